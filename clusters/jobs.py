"""Fine-tunes as Ray jobs: submit through the dashboard's job API, then follow them.

A job's entrypoint is the same ``tune run`` a user types, run on the cluster with
``--address auto``. Its runtime environment carries the config (a YAML file or dict goes
in the job's ``working_dir``; built-in names travel as names), installs Tunefleet with
pip unless the cluster has it, and holds ``HF_TOKEN`` as an environment variable: the
token is never in the entrypoint, the job metadata or the logs.
"""

import asyncio
import os
import shlex
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from omegaconf import OmegaConf

from clusters.errors import ClusterError
from clusters.local_cluster import read_state

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
META_PREFIX = "tunefleet."


def default_address() -> str:
    """``$RAY_API_SERVER_ADDRESS``, else the local cluster's dashboard, else port 8265."""
    if os.environ.get("RAY_API_SERVER_ADDRESS"):
        return os.environ["RAY_API_SERVER_ADDRESS"]
    local = read_state()
    return local.dashboard_url if local else DEFAULT_ADDRESS


def connect(address: str | None = None, timeout_s: float = 5.0):
    """A ``JobSubmissionClient`` for the dashboard at ``address``; fails in seconds.

    Ray's token authentication is used when a token is available (``RAY_AUTH_TOKEN``,
    ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``, as ``ray start`` writes it).

    Raises:
        ClusterError: If nothing answers at ``address`` or the dashboard refuses.
    """
    address = address or default_address()
    url = address if "://" in address else f"http://{address}"
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ClusterError(
            f"--address {address!r} is not a dashboard URL; pass http://HEAD:8265 (the Ray "
            "dashboard, not the GCS port 6379 or a ray:// client address)"
        )
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout_s).close()
    except OSError as err:
        raise ClusterError(
            f"cannot reach the Ray dashboard at {address!r} ({err.strerror or err}); check "
            "that the cluster is up (`tune cluster local status`, `tune cluster status SPEC`) "
            "and that --address names its dashboard port (8265 by default)"
        ) from err
    if _token_available():
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(url)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise ClusterError(f"the Ray dashboard at {address!r} refused: {err}") from err


def _token_available() -> bool:
    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or "~/.ray/auth_token"
    return Path(path).expanduser().is_file()


@dataclass
class JobHandle:
    """A submitted fine-tune: follow it, stop it, and get its result.

    Attributes:
        job_id: Ray's submission id (``raysubmit_...``).
        address: The dashboard URL it was submitted to.
    """

    job_id: str
    address: str

    def _call(self, method: str, *args: Any) -> Any:
        client = connect(self.address)
        try:
            return getattr(client, method)(self.job_id, *args)
        except RuntimeError as err:
            if "does not exist" in str(err) or "404" in str(err):
                raise ClusterError(
                    f"no job {self.job_id!r} on {self.address}; list the jobs with "
                    f"`tune jobs list --address {self.address}`"
                ) from None
            raise ClusterError(f"job {self.job_id!r}: {err}") from err

    def status(self) -> str:
        """``PENDING``, ``RUNNING``, ``SUCCEEDED``, ``FAILED`` or ``STOPPED``."""
        return str(self._call("get_job_status").value)

    def info(self) -> Any:
        """Ray's ``JobDetails`` (entrypoint, metadata, times, message)."""
        return self._call("get_job_info")

    def logs(self) -> str:
        """The job's output so far (the ``tune run`` progress and summary)."""
        return self._call("get_job_logs")

    def follow(self) -> Iterator[str]:
        """Yield the job's output as it is written, until the job ends."""
        client = connect(self.address)
        self.status()  # an unknown id fails here with a clear message
        stream = client.tail_job_logs(self.job_id)
        loop = asyncio.new_event_loop()
        try:
            while True:
                try:
                    yield loop.run_until_complete(stream.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            loop.close()

    def wait(self, timeout: float | None = None, poll_s: float = 1.0) -> str:
        """Block until the job ends; return its final status.

        Raises:
            ClusterError: If ``timeout`` seconds pass first (the job keeps running).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while (status := self.status()) not in TERMINAL:
            if deadline is not None and time.monotonic() > deadline:
                raise ClusterError(
                    f"job {self.job_id} is still {status} after {timeout:g}s; wait longer or "
                    f"`tune jobs stop {self.job_id}`"
                )
            time.sleep(poll_s)
        return status

    def stop(self) -> bool:
        """Ask Ray to stop the job; True if it was running."""
        return bool(self._call("stop_job"))

    def result(self, timeout: float | None = None):
        """Wait, then return the run's :class:`~orchestrator.launcher.FinetuneResult`.

        The outputs are read from ``output_dir`` as the job recorded it, so this needs the
        directory to be visible here (a local cluster, or a shared file system).

        Raises:
            ClusterError: If the job did not succeed (with the end of its logs), or its
                outputs are not visible from this machine.
        """
        from orchestrator.launcher import FinetuneResult
        from orchestrator.recipes.metrics import METRICS_FILE, read_metrics
        from orchestrator.recipes.outputs import ADAPTER_DIR, MERGED_DIR

        status = self.wait(timeout)
        if status != "SUCCEEDED":
            tail = "\n".join(self.logs().strip().splitlines()[-5:])
            raise ClusterError(f"job {self.job_id} {status}; its last output:\n{tail}")
        meta = self.info().metadata or {}
        output_dir = Path(meta.get(META_PREFIX + "output_dir", ""))
        if not (output_dir / METRICS_FILE).exists():
            raise ClusterError(
                f"job {self.job_id} succeeded but its output_dir {str(output_dir)!r} is not "
                "visible from this machine; put output_dir on a shared file system"
            )
        adapter = output_dir / ADAPTER_DIR
        return FinetuneResult(
            output_dir=output_dir,
            adapter_dir=adapter if adapter.exists() else None,
            merged_dir=output_dir / MERGED_DIR,
            checkpoint_dir=Path(meta[META_PREFIX + "checkpoint_dir"]),
            metrics=read_metrics(output_dir / METRICS_FILE),
        )


def list_jobs(address: str | None = None) -> list[Any]:
    """Every job of the cluster (Ray's ``JobDetails``), oldest first."""
    jobs = connect(address).list_jobs()
    return sorted(jobs, key=lambda job: job.start_time or 0)


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
) -> JobHandle:
    """Submit ``tune run`` as a Ray job and return its handle without waiting.

    The config is checked here first (unknown keys, recipe, components), so mistakes fail
    before anything reaches the cluster.

    Args:
        config: A built-in config name, a YAML path, or a dict.
        overrides: ``key=value`` strings, applied on the cluster as on the command line.
        address: The dashboard URL (``http://HEAD:8265``); see :func:`default_address`.
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
    from orchestrator.config import config_name
    from orchestrator.sdk import prepare

    overrides = list(overrides or [])
    client = connect(address)
    host = urlparse(address if address and "://" in address else f"http://{address}").hostname
    local = host in ("127.0.0.1", "localhost") or address is None
    cfg, chosen = prepare(config, overrides, recipe, local=local)
    runtime_env: dict[str, Any] = {"env_vars": {"RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}}
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
    output_dir = Path(cfg.output_dir).expanduser()
    run_name = cfg.get("run_name") or config_name(config).replace("/", "_")
    root = Path(storage or cfg.get("storage") or output_dir / "ray").expanduser()
    metadata = {
        META_PREFIX + "recipe": chosen,
        META_PREFIX + "config": config if isinstance(config, str) else config_arg,
        META_PREFIX + "output_dir": str(output_dir.resolve()),
        META_PREFIX + "checkpoint_dir": str(root.resolve() / run_name),
    }
    try:
        job_id = client.submit_job(
            entrypoint=shlex.join([*command, *overrides]),
            runtime_env=runtime_env,
            metadata=metadata,
        )
    except (RuntimeError, ValueError) as err:
        raise ClusterError(f"the cluster at {address} refused the job: {err}") from err
    if log:
        log(f"Submitted {chosen} with config {config_arg} as job {job_id}")
    return JobHandle(job_id, address or default_address())


def _config_argument(config: str | Path | dict[str, Any], runtime_env: dict[str, Any]) -> str:
    """The ``--config`` value on the cluster; files and dicts go in the job's working_dir."""
    from orchestrator.config.builtins import is_builtin_config

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
