"""Tunefleet's orchestration layer: configs, datasets, recipes, Ray launching, CLI and SDK.

``orchestrator.finetune`` is imported on first use, so ``import orchestrator.datasets``
stays light (no Ray).
"""

from typing import Any

__all__ = ["FinetuneResult", "finetune", "submit"]


def __getattr__(name: str) -> Any:
    if name == "finetune":
        from orchestrator.sdk import finetune

        return finetune
    if name == "submit":
        from orchestrator.jobs import submit

        return submit
    if name == "FinetuneResult":
        from orchestrator.launcher import FinetuneResult

        return FinetuneResult
    raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
