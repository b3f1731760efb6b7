"""Where a recipe runs: its rank, device, and how it reports metrics and checkpoints.

The recipe is a plain function of ``(config, session)``. :class:`LocalSession` runs it in
this process without Ray (unit tests, debugging); the launcher's Ray session runs it
inside Ray Train workers, reporting through ``ray.train.report``.
"""

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch


class Session(Protocol):
    """What the recipe needs from its runtime."""

    rank: int
    world_size: int
    device: torch.device
    node_id: str  # ranks with the same node_id share a machine (for HSDP meshes)

    def report(self, metrics: dict[str, Any], checkpoint_dir: Path | None = None) -> None:
        """Report one step's metrics, with a checkpoint directory to keep if given."""

    def latest_checkpoint(self) -> Path | None:
        """The directory of the checkpoint to resume from, or None to start fresh."""

    def progress(self, metrics: dict[str, Any]) -> None:
        """Send one logged step's metrics to whoever follows the run (rank 0 only)."""


@dataclass
class LocalSession:
    """A single-process session: checkpoints are moved under ``checkpoint_root``.

    Args:
        checkpoint_root: Where reported checkpoints are kept (``checkpoint_<n>``).
        keep: How many of the newest checkpoints to keep.
    """

    checkpoint_root: Path
    keep: int = 2
    rank: int = 0
    world_size: int = 1
    node_id: str = "local"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    reports: list[dict[str, Any]] = field(default_factory=list)
    progressed: list[dict[str, Any]] = field(default_factory=list)

    def report(self, metrics: dict[str, Any], checkpoint_dir: Path | None = None) -> None:
        """Record ``metrics``; move ``checkpoint_dir`` into the checkpoint root."""
        self.reports.append(metrics)
        if checkpoint_dir is None:
            return
        root = Path(self.checkpoint_root)
        root.mkdir(parents=True, exist_ok=True)
        shutil.move(str(checkpoint_dir), root / f"checkpoint_{metrics['step']:06d}")
        for old in self._kept()[: -self.keep]:
            shutil.rmtree(old)

    def progress(self, metrics: dict[str, Any]) -> None:
        """Record ``metrics`` (nobody else follows a local run)."""
        self.progressed.append(metrics)

    def latest_checkpoint(self) -> Path | None:
        """The newest kept checkpoint, if any."""
        kept = self._kept()
        return kept[-1] if kept else None

    def _kept(self) -> list[Path]:
        root = Path(self.checkpoint_root)
        return sorted(root.glob("checkpoint_*")) if root.exists() else []
