"""A Ray job client: submit a ready entrypoint through the dashboard's job API, follow it.

This layer knows nothing of configs or runs: :mod:`orchestrator.jobs` turns a fine-tune
into an entrypoint, a runtime environment and metadata, and reads a finished run's
outputs; here they are submitted, listed, followed and stopped.
"""

import asyncio
import os
import shlex
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

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


def list_jobs(address: str | None = None) -> list[Any]:
    """Every job of the cluster (Ray's ``JobDetails``), oldest first."""
    jobs = connect(address).list_jobs()
    return sorted(jobs, key=lambda job: job.start_time or 0)


def submit_job(
    entrypoint: list[str],
    *,
    runtime_env: dict[str, Any],
    metadata: dict[str, str],
    address: str | None = None,
) -> JobHandle:
    """Submit a ready entrypoint as a Ray job and return its handle without waiting.

    Args:
        entrypoint: The command and its arguments, run on the cluster.
        runtime_env: Ray's runtime environment (``working_dir``, ``pip``, ``env_vars``).
        metadata: Job metadata; Tunefleet's keys start with :data:`META_PREFIX`.
        address: The dashboard URL (``http://HEAD:8265``); see :func:`default_address`.

    Raises:
        ClusterError: If the cluster cannot be reached or refuses the job.
    """
    client = connect(address)
    try:
        job_id = client.submit_job(
            entrypoint=shlex.join(entrypoint), runtime_env=runtime_env, metadata=metadata
        )
    except (RuntimeError, ValueError) as err:
        raise ClusterError(f"the cluster at {address} refused the job: {err}") from err
    return JobHandle(job_id, address or default_address())
