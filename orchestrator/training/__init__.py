"""What the recipes are made of: loss, schedulers, train state, session, mesh and outputs.

Each module holds one training component; :mod:`orchestrator.recipes` composes them into
the per-worker fine-tuning function.
"""
