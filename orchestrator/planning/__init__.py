"""Per-GPU memory of a fine-tune before launching it (``tune plan``).

- :mod:`orchestrator.planning.planner`: the plan and its table.
- :mod:`orchestrator.planning.model_census`: the config's model counted on ``meta``.
- :mod:`orchestrator.planning.activation_memory`: bytes saved for backward, op by op.
- :mod:`orchestrator.planning.gpus`: the accelerators a plan can target.
"""
