"""torchtune's metric loggers, with its names, keywords and files, on rank 0.

A config's ``metric_logger`` (``torchtune.training.metric_logging.DiskLogger`` and the
others map here) is built by the recipe on rank 0 only, next to the ``metrics.jsonl`` that
:class:`~orchestrator.training.metric_logger.MetricLogger` always writes. Each logger
writes what torchtune's writes: ``DiskLogger`` a ``Step N | name:value ...`` line per step
in ``log_dir/log_<unix time>.txt``, ``TensorBoardLogger`` event files under
``log_dir/run_<rank>_<time>/``, ``WandBLogger``, ``CometLogger`` and ``MLFlowLogger`` a
run in their service; ``log_config`` saves the resolved config as
``<output_dir>/torchtune_config.yaml``. A ``log_dir`` may be a URI: files are written to
node-local scratch and uploaded at every ``flush`` (each checkpoint and the end).

The libraries behind W&B, TensorBoard, Comet and MLflow are optional; a logger whose
library is missing raises an ``ImportError`` naming the pip package to install.
"""

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf

from modeling.storage.paths import as_path
from orchestrator.training.local_mirror import LocalMirror

CONFIG_FILE = "torchtune_config.yaml"
Scalar = int | float


class LoggerBackend(Protocol):
    """torchtune's ``MetricLoggerInterface``, which every logger here implements."""

    def log(self, name: str, data: Scalar, step: int) -> None:
        """Log one scalar."""

    def log_dict(self, payload: Mapping[str, Scalar], step: int) -> None:
        """Log several scalars of one step."""

    def log_config(self, config: DictConfig) -> None:
        """Record the run's config."""

    def close(self) -> None:
        """Flush and release; nothing is logged after."""


def save_config(config: DictConfig) -> Path | Any:
    """Write ``config`` (interpolations resolved) to ``<output_dir>/torchtune_config.yaml``.

    Returns:
        The file written (a ``StoragePath`` when ``output_dir`` is a URI).
    """
    target = as_path(config.output_dir) / CONFIG_FILE
    if isinstance(target, Path):
        target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(OmegaConf.to_yaml(config, resolve=True))
    return target


def missing_library(logger: str, module: str, package: str) -> ImportError:
    """The error of a logger whose library is not installed, naming the pip package."""
    return ImportError(
        f"{logger} needs the '{module}' package, which is not installed: run "
        f"`pip install {package}`, or use DiskLogger (no extra package)"
    )


def process_rank() -> int:
    """This process's rank in the default process group (0 when there is none)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


class DiskLogger:
    """Appends ``Step N | name:value name:value`` lines to a text file in ``log_dir``.

    Args:
        log_dir: Folder of the log file (local or URI).
        filename: File name; default ``log_<unix time>.txt``, a new file per run.
        **kwargs: Ignored, as in torchtune.
    """

    def __init__(self, log_dir: str, filename: str | None = None, **kwargs: Any) -> None:
        self._mirror = LocalMirror(log_dir, prefix="tunefleet-logs-")
        self._file_name = self._mirror.path / (filename or f"log_{int(time.time())}.txt")
        self._file = open(self._file_name, "a")  # noqa: SIM115 - open until close()

    def path_to_log_file(self) -> Path:
        """The local file being written."""
        return self._file_name

    def log(self, name: str, data: Scalar, step: int) -> None:
        """Write ``Step {step} | {name}:{data}``."""
        self._file.write(f"Step {step} | {name}:{data}\n")
        self._file.flush()

    def log_dict(self, payload: Mapping[str, Scalar], step: int) -> None:
        """Write one line with every ``name:value`` of the step."""
        self._file.write(f"Step {step} | ")
        for name, data in payload.items():
            self._file.write(f"{name}:{data} ")
        self._file.write("\n")
        self._file.flush()

    def log_config(self, config: DictConfig) -> None:
        """Save the config beside the run's outputs."""
        save_config(config)

    def flush(self) -> None:
        """Upload the file when ``log_dir`` is a URI."""
        self._file.flush()
        self._mirror.sync()

    def close(self) -> None:
        """Close (and upload) the file."""
        if not self._file.closed:
            self._file.close()
            self._mirror.sync()


class StdoutLogger:
    """Prints ``Step N | name:value ...`` lines to standard output."""

    def __init__(self, **kwargs: Any) -> None:
        del kwargs  # torchtune's StdoutLogger takes and ignores any keyword too

    def log(self, name: str, data: Scalar, step: int) -> None:
        """Print ``Step {step} | {name}:{data}``."""
        print(f"Step {step} | {name}:{data}")

    def log_dict(self, payload: Mapping[str, Scalar], step: int) -> None:
        """Print one line with every ``name:value`` of the step."""
        print(f"Step {step} | " + "".join(f"{name}:{data} " for name, data in payload.items()))

    def log_config(self, config: DictConfig) -> None:
        """Save the config beside the run's outputs."""
        save_config(config)

    def close(self) -> None:
        """Flush standard output."""
        sys.stdout.flush()


class TensorBoardLogger:
    """Scalars as TensorBoard event files (``torch.utils.tensorboard``'s writer).

    Args:
        log_dir: Folder of the event files (local or URI).
        organize_logs: Write into ``log_dir/run_<rank>_<time>/`` so runs sit side by side.
        **kwargs: Ignored, as in torchtune.

    Raises:
        ImportError: ``tensorboard`` is not installed (``pip install tensorboard``).
    """

    def __init__(self, log_dir: str, organize_logs: bool = True, **kwargs: Any) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise missing_library("TensorBoardLogger", "tensorboard", "tensorboard") from err
        self._rank = process_rank()
        run = f"run_{self._rank}_{time.time()}" if organize_logs else ""
        self._mirror = LocalMirror(os.path.join(log_dir, run), prefix="tunefleet-tb-")
        self.log_dir = self._mirror.target
        self._writer = SummaryWriter(log_dir=str(self._mirror.path)) if self._rank == 0 else None

    def log(self, name: str, data: Scalar, step: int) -> None:
        """Add one scalar at ``step``."""
        if self._writer:
            self._writer.add_scalar(name, data, global_step=step, new_style=True)

    def log_dict(self, payload: Mapping[str, Scalar], step: int) -> None:
        """Add every scalar of the step."""
        for name, data in payload.items():
            self.log(name, data, step)

    def log_config(self, config: DictConfig) -> None:
        """Save the config beside the run's outputs."""
        save_config(config)

    def flush(self) -> None:
        """Write pending events (and upload them when ``log_dir`` is a URI)."""
        if self._writer:
            self._writer.flush()
            self._mirror.sync()

    def close(self) -> None:
        """Close the writer."""
        if self._writer:
            self._writer.close()
            self._writer = None
            self._mirror.sync()


class WandBLogger:
    """A Weights & Biases run (``wandb.init`` on rank 0), each step logged at ``global_step``.

    Args:
        project: W&B project.
        entity: W&B entity (default: yours).
        group: W&B group of runs.
        log_dir: W&B's local folder (``dir`` in ``kwargs`` wins, as in torchtune).
        **kwargs: Passed to ``wandb.init`` (``name``, ``tags``, ``mode``, ...).

    Raises:
        ImportError: ``wandb`` is not installed (``pip install wandb``).
    """

    def __init__(
        self,
        project: str = "torchtune",
        entity: str | None = None,
        group: str | None = None,
        log_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            import wandb
        except ImportError as err:
            raise missing_library("WandBLogger", "wandb", "wandb") from err
        self._wandb = wandb
        self.log_dir = kwargs.pop("dir", log_dir)
        if self.log_dir is not None:
            os.makedirs(self.log_dir, exist_ok=True)
        if wandb.run is None and process_rank() == 0:
            wandb.init(project=project, entity=entity, group=group, dir=self.log_dir, **kwargs)
        if wandb.run is not None and getattr(wandb, "define_metric", None):
            wandb.define_metric("global_step")
            wandb.define_metric("*", step_metric="global_step", step_sync=True)
        self._allow_val_change = kwargs.get("allow_val_change", False)

    def log(self, name: str, data: Scalar, step: int) -> None:
        """Log one scalar at ``global_step``."""
        if self._wandb.run:
            self._wandb.log({name: data, "global_step": step})

    def log_dict(self, payload: Mapping[str, Scalar], step: int) -> None:
        """Log every scalar of the step at ``global_step``."""
        if self._wandb.run:
            self._wandb.log({**payload, "global_step": step})

    def log_config(self, config: DictConfig) -> None:
        """Set the run's config and upload the saved config file."""
        if self._wandb.run:
            resolved = OmegaConf.to_container(config, resolve=True)
            self._wandb.config.update(resolved, allow_val_change=self._allow_val_change)
            saved = save_config(config)
            if isinstance(saved, Path):
                self._wandb.save(str(saved), base_path=str(saved.parent))

    def close(self) -> None:
        """Finish the run."""
        if self._wandb.run:
            self._wandb.finish()


class CometLogger:
    """A Comet experiment (``comet_ml.start`` on rank 0), with torchtune's keywords.

    Args:
        api_key: Comet API key (better: ``comet login`` or ``COMET_API_KEY``).
        workspace: Comet workspace.
        project: Comet project.
        experiment_key: Key of the experiment to create or continue.
        mode: ``get_or_create``, ``get`` or ``create``.
        online: False keeps the experiment offline.
        experiment_name: Name of the experiment.
        tags: Tags of the experiment.
        log_code: Log the source code.
        **kwargs: Passed to ``comet_ml.ExperimentConfig`` (``log_dir`` is dropped).

    Raises:
        ImportError: ``comet_ml`` is not installed (``pip install comet_ml``).
    """

    def __init__(
        self,
        api_key: str | None = None,
        workspace: str | None = None,
        project: str | None = None,
        experiment_key: str | None = None,
        mode: str | None = None,
        online: bool | None = None,
        experiment_name: str | None = None,
        tags: list[str] | None = None,
        log_code: bool = True,
        **kwargs: Any,
    ) -> None:
        try:
            import comet_ml
        except ImportError as err:
            raise missing_library("CometLogger", "comet_ml", "comet_ml") from err
        kwargs.pop("log_dir", None)
        self.experiment = None
        if process_rank() == 0:
            self.experiment = comet_ml.start(
                api_key=api_key,
                workspace=workspace,
                project=project,
                experiment_key=experiment_key,
                mode=mode,
                online=online,
                experiment_config=comet_ml.ExperimentConfig(
                    log_code=log_code, tags=tags, name=experiment_name, **kwargs
                ),
            )

    def log(self, name: str, data: Scalar, step: int) -> None:
        """Log one metric at ``step``."""
        if self.experiment is not None:
            self.experiment.log_metric(name, data, step=step)

    def log_dict(self, payload: Mapping[str, Scalar], step: int) -> None:
        """Log every metric of the step."""
        if self.experiment is not None:
            self.experiment.log_metrics(dict(payload), step=step)

    def log_config(self, config: DictConfig) -> None:
        """Log the config as parameters and the saved config file as an asset."""
        if self.experiment is not None:
            self.experiment.log_parameters(OmegaConf.to_container(config, resolve=True))
            saved = save_config(config)
            if isinstance(saved, Path):
                self.experiment.log_asset(str(saved), file_name=saved.name)

    def close(self) -> None:
        """End the experiment."""
        if self.experiment is not None:
            self.experiment.end()
            self.experiment = None


class MLFlowLogger:
    """An MLflow run (``mlflow.start_run`` on rank 0), with torchtune's keywords.

    Args:
        experiment_name: Experiment (default: ``MLFLOW_EXPERIMENT_NAME`` or MLflow's).
        tracking_uri: Tracking server (default: ``MLFLOW_TRACKING_URI`` or MLflow's).
        run_id: Run to continue (default: ``MLFLOW_RUN_ID`` or a new run).
        run_name: Name of a new run.

    Raises:
        ImportError: ``mlflow`` is not installed (``pip install mlflow``).
    """

    def __init__(
        self,
        experiment_name: str | None = None,
        tracking_uri: str | None = None,
        run_id: str | None = None,
        run_name: str | None = None,
    ) -> None:
        try:
            import mlflow
        except ImportError as err:
            raise missing_library("MLFlowLogger", "mlflow", "mlflow") from err
        self._mlflow = mlflow
        self._rank = process_rank()
        self._run_id = run_id or os.getenv("MLFLOW_RUN_ID")
        if self._rank != 0:
            return
        tracking_uri = tracking_uri or os.getenv("MLFLOW_TRACKING_URI")
        if not mlflow.is_tracking_uri_set() and tracking_uri is not None:
            mlflow.set_tracking_uri(tracking_uri)
        experiment_name = experiment_name or os.getenv("MLFLOW_EXPERIMENT_NAME")
        if mlflow.active_run() is None or self._run_id:
            if experiment_name is not None:
                mlflow.set_experiment(experiment_name)
            self._run_id = mlflow.start_run(run_id=self._run_id, run_name=run_name).info.run_id

    def log(self, name: str, data: Scalar, step: int) -> None:
        """Log one metric at ``step``."""
        if self._mlflow.active_run():
            self._mlflow.log_metric(name, data, step=step, run_id=self._run_id)

    def log_dict(self, payload: Mapping[str, Scalar], step: int) -> None:
        """Log every metric of the step."""
        if self._mlflow.active_run():
            self._mlflow.log_metrics(dict(payload), step=step, run_id=self._run_id)

    def log_config(self, config: DictConfig) -> None:
        """Log the flattened config as parameters and the saved file as an artifact."""
        if self._mlflow.active_run():
            resolved = OmegaConf.to_container(config, resolve=True)
            self._mlflow.log_params(_flatten(resolved), run_id=self._run_id)
            saved = save_config(config)
            if isinstance(saved, Path):
                artifact_path = str(saved.parent).lstrip("/")
                self._mlflow.log_artifact(str(saved), artifact_path, run_id=self._run_id)

    def close(self) -> None:
        """End the run."""
        if self._rank == 0 and self._mlflow.active_run():
            self._mlflow.end_run()


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name))
        else:
            flat[name] = value
    return flat
