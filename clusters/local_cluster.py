"""A real multi-node Ray cluster on this machine: one head and worker raylets.

Each node is a separate ``ray start`` with its own temp dir and ports, so a job sees
``nodes`` Ray nodes exactly as on a real cluster (placement, node loss, shared storage on
the local disk). The cluster is described in a small JSON state file, so ``tune cluster
local status`` and ``down`` find it from any shell; ``down`` stops only the processes of
those temp dirs, never other Ray instances on the machine.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from clusters.errors import ClusterError
from clusters.processes import node_processes, stop_processes

DEFAULT_STATE_FILE = Path("~/.tunefleet/local-cluster.json")
HOST = "127.0.0.1"
OBJECT_STORE_BYTES = 200 * 1024**2  # small: training data never goes through it


@dataclass
class LocalNode:
    """One ``ray start`` of the cluster."""

    temp_dir: str
    cpus: int
    head: bool


@dataclass
class LocalCluster:
    """A running local cluster as recorded in the state file.

    Attributes:
        address: The GCS address (``127.0.0.1:PORT``) for ``ray.init`` and ``ray start``.
        dashboard_url: The dashboard / job submission URL (``http://127.0.0.1:PORT``).
        root: The directory holding every node's temp dir.
        nodes: The head first, then the worker nodes.
    """

    address: str
    dashboard_url: str
    root: str
    nodes: list[LocalNode] = field(default_factory=list)

    def to_json(self) -> str:
        """The state file's content."""
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "LocalCluster":
        """Parse a state file."""
        data = json.loads(text)
        data["nodes"] = [LocalNode(**node) for node in data["nodes"]]
        return cls(**data)


def state_path(state_file: str | Path | None = None) -> Path:
    """The state file: ``state_file``, ``$TUNEFLEET_LOCAL_CLUSTER``, or the default."""
    chosen = state_file or os.environ.get("TUNEFLEET_LOCAL_CLUSTER") or DEFAULT_STATE_FILE
    return Path(chosen).expanduser()


def read_state(state_file: str | Path | None = None) -> LocalCluster | None:
    """The recorded cluster, or None when none is up."""
    path = state_path(state_file)
    return LocalCluster.from_json(path.read_text()) if path.exists() else None


def up(
    nodes: int = 2,
    cpus_per_node: int = 1,
    *,
    state_file: str | Path | None = None,
    timeout_s: float = 120.0,
) -> LocalCluster:
    """Start a head and ``nodes - 1`` worker raylets, each with ``cpus_per_node`` CPUs.

    Raises:
        ClusterError: If a cluster is already recorded, a size is below 1, or a node
            fails to start (with Ray's message; the nodes already started are stopped).
    """
    if nodes < 1 or cpus_per_node < 1:
        raise ClusterError(
            f"--nodes ({nodes}) and --cpus-per-node ({cpus_per_node}) must be at least 1"
        )
    path = state_path(state_file)
    existing = read_state(path)
    if existing is not None:
        raise ClusterError(
            f"a local cluster is already up at {existing.dashboard_url} (state {path}); "
            "run `tune cluster local down` first"
        )
    root = tempfile.mkdtemp(prefix="tfl-", dir="/tmp")  # short: Ray's socket paths are long
    gcs_port, dashboard_port = free_port(), free_port()
    cluster = LocalCluster(f"{HOST}:{gcs_port}", f"http://{HOST}:{dashboard_port}", root)
    try:
        for index in range(nodes):
            node = LocalNode(temp_dir=f"{root}/n{index}", cpus=cpus_per_node, head=index == 0)
            args = ["--head", f"--port={gcs_port}", "--dashboard-host", HOST]
            args += [
                f"--dashboard-port={dashboard_port}",
                f"--ray-client-server-port={free_port()}",
            ]
            if not node.head:
                args = [f"--address={cluster.address}"]
            _ray_start([*args, *_node_args(node)], timeout_s)
            cluster.nodes.append(node)
    except ClusterError:
        _stop_nodes(cluster)
        raise
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(cluster.to_json())
    return cluster


def down(state_file: str | Path | None = None) -> LocalCluster | None:
    """Stop the recorded cluster's processes and forget it; None if none was up."""
    path = state_path(state_file)
    cluster = read_state(path)
    if cluster is None:
        return None
    _stop_nodes(cluster)
    path.unlink(missing_ok=True)
    return cluster


def status(state_file: str | Path | None = None) -> dict[str, Any] | None:
    """The recorded cluster and, per node, whether its processes are alive."""
    cluster = read_state(state_file)
    if cluster is None:
        return None
    alive = [bool(node_processes(node.temp_dir)) for node in cluster.nodes]
    return {"cluster": cluster, "alive": alive}


def ray_env() -> dict[str, str]:
    """The environment of the nodes: token auth on, and this Python's ``tune`` on PATH.

    Jobs run their entrypoint (``tune run ...``) with the raylet's PATH, so the nodes see
    the Tunefleet installed next to this interpreter, as cluster nodes with it installed do.
    """
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("RAY_AUTH_MODE", "token")
    env.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    return env


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _node_args(node: LocalNode) -> list[str]:
    ports = (
        "node-manager-port",
        "object-manager-port",
        "dashboard-agent-listen-port",
        "dashboard-agent-grpc-port",
        "runtime-env-agent-port",
        "metrics-export-port",
    )
    return [
        f"--num-cpus={node.cpus}",
        "--num-gpus=0",
        f"--temp-dir={node.temp_dir}",
        f"--node-ip-address={HOST}",
        f"--object-store-memory={OBJECT_STORE_BYTES}",
        "--disable-usage-stats",
        *(f"--{name}={free_port()}" for name in ports),
    ]


def _ray_start(args: list[str], timeout_s: float) -> None:
    ray = Path(sys.executable).with_name("ray")
    command = [str(ray) if ray.exists() else "ray", "start", *args]
    try:
        done = subprocess.run(
            command, env=ray_env(), capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired as err:
        raise ClusterError(f"`ray start` did not finish in {timeout_s:.0f}s") from err
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise ClusterError("`ray start` failed: " + " | ".join(tail))


def _stop_nodes(cluster: LocalCluster) -> None:
    for node in reversed(cluster.nodes or []):
        stop_processes(node_processes(node.temp_dir))
    time.sleep(0.2)
    stop_processes(node_processes(cluster.root))
    shutil.rmtree(cluster.root, ignore_errors=True)
