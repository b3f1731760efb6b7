"""Tunefleet's clusters: shipped cluster specs, local and cloud cluster lifecycle, Ray jobs.

- :mod:`clusters.spec_files`: the Ray cluster-launcher and KubeRay specs in ``specs/``.
- :mod:`clusters.local_cluster`: a multi-node Ray cluster on this machine.
- :mod:`clusters.jobs`: submitting fine-tunes as Ray jobs and following them.
- :mod:`clusters.planner`: per-GPU memory of a config before launching it.
"""
