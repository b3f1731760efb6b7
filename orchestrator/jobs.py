"""Fine-tunes as Ray jobs: a run turned into an entrypoint, submitted, and its result read.

A job's entrypoint is the same ``tune run`` a user types, run on the cluster with
``--address auto``. Its runtime environment carries the config (a YAML file or dict goes
in the job's ``working_dir``; built-in names travel as names), installs Tunefleet with
pip unless the cluster has it, and holds ``HF_TOKEN`` as an environment variable: the
token is never in the entrypoint, the job metadata or the logs. Submitting, following and
stopping the job is :mod:`clusters.jobs`'s part.
"""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from omegaconf import OmegaConf

from clusters.errors import ClusterError
from clusters.jobs import META_PREFIX, JobHandle, connect, submit_job
from modeling.checkpointing.atomic import is_complete
from modeling.storage.paths import as_path
from orchestrator.config import config_name
from orchestrator.config.builtins import is_builtin_config
from orchestrator.launcher import STORAGE_ENV_VARS, FinetuneResult
from orchestrator.training.metric_logger import METRICS_FILE, read_metrics
from orchestrator.training.outputs import ADAPTER_DIR, MERGED_DIR


class FinetuneJob(JobHandle):
    """A submitted fine-tune: follow it, stop it (see :class:`JobHandle`), get its result."""

    def result(self, timeout: float | None = None) -> FinetuneResult:
        """Wait, then return the run's :class:`~orchestrator.launcher.FinetuneResult`.

        The outputs are read from ``output_dir`` as the job recorded it, so this needs the
        directory to be visible here (a local cluster, or a shared file system).

        Raises:
            ClusterError: If the job did not succeed (with the end of its logs), or its
                outputs are not visible from this machine.
        """
        status = self.wait(timeout)
        if status != "SUCCEEDED":
            tail = "\n".join(self.logs().strip().splitlines()[-5:])
            raise ClusterError(f"job {self.job_id} {status}; its last output:\n{tail}")
        meta = self.info().metadata or {}
        output_dir = as_path(meta.get(META_PREFIX + "output_dir", ""))
        if not (output_dir / METRICS_FILE).exists():
            raise ClusterError(
                f"job {self.job_id} succeeded but its output_dir {str(output_dir)!r} is not "
                "visible from this machine; set output_dir to a URI (s3://, gs://)"
            )
        adapter = output_dir / ADAPTER_DIR
        return FinetuneResult(
            output_dir=output_dir,
            adapter_dir=adapter if is_complete(adapter) else None,
            merged_dir=output_dir / MERGED_DIR,
            checkpoint_dir=as_path(meta[META_PREFIX + "checkpoint_dir"]),
            metrics=read_metrics(output_dir / METRICS_FILE),
        )


def submit(
    config: str | Path | dict[str, Any],
    overrides: list[str] | None = None,
    *,
    address: str | None = None,
    recipe: str | None = None,
    num_workers: int | None = None,
    gpus_per_worker: float | None = None,
    storage: str | None = None,
    hf_token: str | None = None,
    install: bool = True,
    pip_spec: str | None = None,
    log: Callable[[str], None] | None = None,
) -> FinetuneJob:
    """Submit ``tune run`` as a Ray job and return its handle without waiting.

    The config is checked here first (unknown keys, recipe, components), so mistakes fail
    before anything reaches the cluster.

    Args:
        config: A built-in config name, a YAML path, or a dict.
        overrides: ``key=value`` strings, applied on the cluster as on the command line.
        address: The dashboard URL (``http://HEAD:8265``); see
            :func:`clusters.jobs.default_address`.
        recipe: As for ``tune run``; default the config's.
        num_workers: Ray Train workers; default the config's, else sized to the cluster.
        gpus_per_worker: GPUs per worker; default the config's.
        storage: Checkpoint storage shared by the nodes (path or URI).
        hf_token: Hugging Face token; default ``$HF_TOKEN``. Passed as a job env var only.
        install: Install Tunefleet on the cluster with pip (off when it is there already).
        pip_spec: What to pip-install; default ``tunefleet==<this version>``.
        log: Called with progress lines.

    Raises:
        ConfigError: For config mistakes, before anything is submitted.
        ClusterError: If the cluster cannot be reached or refuses the job.
    """
    from orchestrator.sdk import prepare

    overrides = list(overrides or [])
    connect(address)  # an unreachable cluster fails in seconds, before any preparation
    host = urlparse(address if address and "://" in address else f"http://{address}").hostname
    local = host in ("127.0.0.1", "localhost") or address is None
    cfg, chosen = prepare(config, overrides, recipe, local=local)
    runtime_env: dict[str, Any] = {"env_vars": {"RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}}
    runtime_env["env_vars"].update(
        {name: os.environ[name] for name in STORAGE_ENV_VARS if name in os.environ}
    )
    token = hf_token or os.environ.get("HF_TOKEN")
    if token:
        runtime_env["env_vars"]["HF_TOKEN"] = token
    if install:
        runtime_env["pip"] = [pip_spec or _this_version_spec()]
    config_arg = _config_argument(config, runtime_env)
    command = ["tune", "run", chosen, "--config", config_arg, "--address", "auto"]
    if num_workers is not None:
        command += ["--num-workers", str(num_workers)]
    if gpus_per_worker is not None:
        command += ["--gpus-per-worker", str(gpus_per_worker)]
    if storage is not None:
        command += ["--storage", storage]
    output_dir = as_path(cfg.output_dir).resolve()
    run_name = cfg.get("run_name") or config_name(config).replace("/", "_")
    root = as_path(storage or cfg.get("storage") or output_dir / "ray").resolve()
    metadata = {
        META_PREFIX + "recipe": chosen,
        META_PREFIX + "config": config if isinstance(config, str) else config_arg,
        META_PREFIX + "output_dir": str(output_dir),
        META_PREFIX + "checkpoint_dir": str(root / run_name),
    }
    handle = submit_job(
        [*command, *overrides], runtime_env=runtime_env, metadata=metadata, address=address
    )
    if log:
        log(f"Submitted {chosen} with config {config_arg} as job {handle.job_id}")
    return FinetuneJob(handle.job_id, handle.address)


def _config_argument(config: str | Path | dict[str, Any], runtime_env: dict[str, Any]) -> str:
    """The ``--config`` value on the cluster; files and dicts go in the job's working_dir."""
    if isinstance(config, str) and is_builtin_config(config):
        return config
    workdir = Path(tempfile.mkdtemp(prefix="tunefleet-job-"))
    if isinstance(config, dict):
        target = workdir / "config.yaml"
        OmegaConf.save(OmegaConf.create(config), target)
    else:
        source = Path(config).expanduser()
        target = workdir / source.name
        target.write_text(source.read_text())
    runtime_env["working_dir"] = str(workdir)
    return target.name


def _this_version_spec() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"tunefleet=={version('tunefleet')}"
    except PackageNotFoundError:
        return "tunefleet"
