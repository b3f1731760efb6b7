"""Training recipes: the per-worker fine-tuning function (:mod:`orchestrator.recipes.finetune`).

Its components live in :mod:`orchestrator.training`.
"""
