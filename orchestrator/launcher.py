"""Launch a recipe as a Ray Train job: size the workers, check the cluster, run, collect.

The launcher runs in the driver (the ``tune run`` process, a Ray job's entrypoint, or an
SDK caller). Workers run :func:`orchestrator.recipes.finetune.finetune` through
:class:`RaySession`, which adapts ``ray.train`` to the recipe's session protocol.
"""

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from modeling.checkpointing.atomic import is_complete
from modeling.storage import StorageError, delete_tree, filesystem
from modeling.storage.backends import portable_filesystem
from modeling.storage.paths import StoragePath, as_path
from orchestrator.progress import print_progress
from orchestrator.training.metric_logger import METRICS_FILE, read_metrics
from orchestrator.training.outputs import ADAPTER_DIR, MERGED_DIR

# Written into a run's storage folder when it finishes (see _archive_finished_run).
FINISHED_MARKER = ".tunefleet-finished"
# Where storage is and how to reach it: set on the driver, the workers need the same.
STORAGE_ENV_VARS = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "STORAGE_EMULATOR_HOST",
    "HF_ENDPOINT",
    "HF_TOKEN",
    "TUNEFLEET_CACHE",
)


class LaunchError(RuntimeError):
    """A run could not start or did not finish; the message says why and what to do."""


@dataclass
class FinetuneResult:
    """What a finished run produced.

    Attributes:
        output_dir: The run's output directory: a ``Path``, or for a URI a
            :class:`~modeling.storage.paths.StoragePath` whose ``str()`` is the URI given.
        adapter_dir: The PEFT adapter (None for full fine-tunes).
        merged_dir: The merged Hugging Face model.
        checkpoint_dir: Where Ray Train kept the resumable checkpoints of the run.
        metrics: One dict per logged step, each with at least ``step`` and ``loss``.
    """

    output_dir: Path | StoragePath
    adapter_dir: Path | StoragePath | None
    merged_dir: Path | StoragePath
    checkpoint_dir: Path | StoragePath
    metrics: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class LaunchOptions:
    """The ``tune run`` flags; None means "from the config, else sized to the cluster"."""

    num_workers: int | None = None
    gpus_per_worker: float | None = None
    address: str | None = None
    storage: str | None = None
    verbose: bool = False  # show Ray's own logs and the workers' output


class RaySession:
    """The recipe's session inside a Ray Train worker.

    Args:
        records: The driver's queue for rank 0's logged metrics (None: nobody follows).
    """

    def __init__(self, records=None) -> None:
        import ray
        import ray.train
        import ray.train.torch

        context = ray.train.get_context()
        self.rank = context.get_world_rank()
        self.world_size = context.get_world_size()
        self.device = ray.train.torch.get_device()
        self.node_id = ray.get_runtime_context().get_node_id()
        self._records = records

    def progress(self, metrics: dict[str, Any]) -> None:
        """Put ``metrics`` on the driver's queue; a full queue drops it (training never waits)."""
        from ray.exceptions import RayError
        from ray.util.queue import Full

        if self._records is not None:
            # Progress is best-effort: a full queue, or one lost with its node, never
            # stops training (metrics.jsonl keeps every step either way).
            with contextlib.suppress(Full, RayError):
                self._records.put_nowait(metrics)

    def report(self, metrics: dict[str, Any], checkpoint_dir: Path | None = None) -> None:
        """Report through ``ray.train.report``; Ray keeps the checkpoint in run storage."""
        import ray.train

        checkpoint = (
            None
            if checkpoint_dir is None
            else ray.train.Checkpoint.from_directory(str(checkpoint_dir))
        )
        ray.train.report(metrics, checkpoint=checkpoint)

    def latest_checkpoint(self) -> Path | None:
        """The newest checkpoint of this run (after a worker loss, or a relaunch)."""
        import ray.train

        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            return None
        if checkpoint.filesystem.type_name == "local":
            return Path(checkpoint.path)
        return Path(checkpoint.to_directory())


def _train_worker(payload: dict[str, Any]) -> None:
    """Ray Train's per-worker entry point."""
    import torch

    from orchestrator.recipes.finetune import finetune

    os.environ.update(payload.get("env", {}))
    torch.set_num_threads(payload.get("threads", 1))  # the CPUs Ray reserved for this worker
    finetune(payload["config"], RaySession(payload.get("records")))


def launch(
    cfg: DictConfig,
    options: LaunchOptions,
    *,
    progress: Callable[[dict[str, Any]], None] | None = None,
    config_name: str = "run",
) -> FinetuneResult:
    """Fine-tune with ``cfg`` on a Ray cluster and return its outputs.

    ``lora_finetune`` and ``full_finetune`` are one function: the model builder decides
    which parameters train. :func:`orchestrator.sdk.prepare` has already checked that the
    recipe a user named fits the config's model.

    Args:
        cfg: The resolved config.
        options: Workers, GPUs, cluster address and storage (flags override the config).
        progress: Called with each record rank 0 sends: the run's header, then every
            logged step's metrics (see :mod:`orchestrator.progress`); None for silence.
        config_name: Used for the Ray run name when the config has no ``run_name``.

    Raises:
        LaunchError: For resources the cluster cannot give, an unwritable output
            directory, or a failed run (with the worker's error).
    """
    import ray
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    output_dir = _writable_output_dir(cfg.output_dir)
    gpus = options.gpus_per_worker
    gpus = float(cfg.get("gpus_per_worker") or 0) if gpus is None else float(gpus)
    _start_ray(options.address, verbose=options.verbose)
    num_workers = _check_resources(options.num_workers or cfg.get("num_workers"), gpus)
    cpus = _cpus_per_worker(num_workers, gpus)
    storage = as_path(options.storage or cfg.get("storage") or output_dir / "ray")
    run_name = cfg.get("run_name") or config_name.replace("/", "_")
    _archive_finished_run(storage, run_name)
    records = _record_queue() if progress is not None else None
    payload = {
        "config": OmegaConf.to_container(cfg, resolve=True),
        "records": records,
        "env": {name: os.environ[name] for name in STORAGE_ENV_VARS if name in os.environ},
        "threads": cpus,
    }
    storage_path, storage_fs = _ray_storage(storage)

    trainer = TorchTrainer(
        _train_worker,
        train_loop_config=payload,
        scaling_config=ray.train.ScalingConfig(
            num_workers=num_workers,
            use_gpu=gpus > 0,
            resources_per_worker={"CPU": cpus, **({"GPU": gpus} if gpus else {})},
        ),
        run_config=ray.train.RunConfig(
            name=run_name,
            storage_path=storage_path,
            storage_filesystem=storage_fs,
            failure_config=ray.train.FailureConfig(max_failures=int(cfg.get("max_failures", 0))),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
        ),
        torch_config=TorchConfig(backend="nccl" if gpus > 0 else "gloo"),
    )
    done = threading.Event()
    follower = None
    if progress is not None:
        follower = threading.Thread(
            target=print_progress, args=(records, done, progress), daemon=True
        )
        follower.start()
    try:
        trainer.fit()
    except Exception as err:  # Ray wraps the worker's exception; surface its message
        raise LaunchError(_root_cause(err)) from err
    finally:
        done.set()
        if follower is not None:
            follower.join(timeout=5)
    (storage / run_name / FINISHED_MARKER).write_text("finished\n")
    is_lora = is_complete(output_dir / ADAPTER_DIR)
    return FinetuneResult(
        output_dir=output_dir,
        adapter_dir=output_dir / ADAPTER_DIR if is_lora else None,
        merged_dir=output_dir / MERGED_DIR,
        checkpoint_dir=storage / run_name,
        metrics=read_metrics(output_dir / METRICS_FILE),
    )


def _record_queue():
    """The queue rank 0 sends its logged steps to, on the driver's own node.

    On the driver's node (it needs no CPU) it lives as long as the driver does, so losing a
    worker node never takes the queue with it.
    """
    import ray
    from ray.util.queue import Queue
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
    return Queue(maxsize=10_000, actor_options={"num_cpus": 0, "scheduling_strategy": here})


def _archive_finished_run(storage: Path | StoragePath, run_name: str) -> None:
    """Move a finished run's checkpoints aside so a new run of that name starts fresh.

    Ray Train resumes a run from the newest checkpoint under its name. That is what a user
    wants after a crash or a lost cluster (run the same command again), but a run that
    finished should not be resumed into its last few steps: its folder becomes
    ``<name>.finished-<time>`` and is kept (on object storage, copied there and removed).
    """
    run_dir = storage / run_name
    if not (run_dir / FINISHED_MARKER).exists():
        return
    archived = run_dir.with_name(f"{run_name}.finished-{time.strftime('%Y%m%d-%H%M%S')}")
    if isinstance(run_dir, StoragePath):
        import pyarrow.fs as pafs

        fs, source = filesystem(str(run_dir))
        pafs.copy_files(source, filesystem(str(archived))[1], source_filesystem=fs)
        delete_tree(str(run_dir))
    else:
        run_dir.rename(archived)


def _ray_storage(storage: Path | StoragePath) -> tuple[str, Any]:
    """Ray Train's ``storage_path`` and ``storage_filesystem`` for a path or a URI.

    A URI gets the pyarrow file system the rest of Tunefleet uses (endpoint from
    ``AWS_ENDPOINT_URL``, credentials from the usual chain, carried along to Ray's
    controller), so checkpoints go where the inputs come from and any node can resume.
    """
    if isinstance(storage, StoragePath):
        fs, path = portable_filesystem(str(storage))
        return path, fs
    return str(storage.resolve()), None


def _start_ray(address: str | None, verbose: bool = False) -> None:
    """Connect to ``address``, or start a local cluster sized to this machine.

    Quietly unless ``verbose``: Ray's start-up logs and the workers' output are hidden.
    """
    import ray

    if address:
        _check_reachable(address)
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    level = logging.INFO if verbose else logging.ERROR
    logging.getLogger("ray").setLevel(level)
    kwargs = dict(logging_level=level, log_to_driver=verbose, configure_logging=True)
    if address:
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise LaunchError(f"Cannot connect to the Ray cluster at {address!r}: {err}") from err
    else:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, **kwargs)


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds when nothing listens at ``address`` (Ray itself retries for minutes)."""
    if address == "auto" or address.startswith("local"):
        return
    hostport = address.removeprefix("ray://").rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise LaunchError(
            f"--address {address!r} is not HOST:PORT; pass the head's GCS address "
            f"(HOST:6379), ray://HOST:10001, or auto"
        )
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise LaunchError(
            f"Cannot reach the Ray cluster at {address!r} ({err.strerror or err}); check that it "
            f"is up (`tune cluster local status`, `tune cluster status SPEC`) and that --address "
            f"names its GCS port (6379 by default)"
        ) from err


def _check_resources(num_workers: int | None, gpus_per_worker: float) -> int:
    """The worker count to use; fail fast if the cluster cannot host it."""
    import ray

    total = ray.cluster_resources()
    cpus, gpus = int(total.get("CPU", 0)), total.get("GPU", 0)
    if num_workers is not None and num_workers < 1:
        raise LaunchError(
            f"num_workers must be at least 1, got {num_workers}; set num_workers=N (or "
            f"--num-workers N), or leave it unset for one worker per GPU (per node on CPUs)"
        )
    if num_workers is None:
        # CPU-only: one worker per node computing with all its cores, which beats sharding
        # one machine's cores over workers that then talk through gloo.
        num_workers = int(gpus // gpus_per_worker) if gpus_per_worker else len(_cpu_nodes())
    if num_workers < 1:
        raise LaunchError(
            f"No worker fits: the cluster has {cpus} CPUs and {gpus:g} GPUs, and each worker "
            f"needs 1 CPU and {gpus_per_worker:g} GPUs; pass --gpus-per-worker 0 on a CPU "
            f"cluster or add GPU nodes"
        )
    problems = []
    if num_workers > cpus:
        problems.append(f"{num_workers} workers need {num_workers} CPUs, the cluster has {cpus}")
    if gpus_per_worker and num_workers * gpus_per_worker > gpus:
        problems.append(
            f"{num_workers} workers x {gpus_per_worker:g} GPUs need "
            f"{num_workers * gpus_per_worker:g} GPUs, the cluster has {gpus:g}"
        )
    if problems:
        raise LaunchError(
            "The cluster cannot host this run: "
            + "; ".join(problems)
            + ". Lower --num-workers / --gpus-per-worker or use a bigger cluster."
        )
    return num_workers


def _cpus_per_worker(num_workers: int, gpus_per_worker: float) -> int:
    """CPUs (and so compute threads) per worker: a CPU run shares every node's cores out.

    Workers spread over the nodes, so each gets the smallest node's CPUs divided by the
    workers a node holds: one worker on a 2-core machine computes with both cores. A GPU
    worker computes on its GPU and keeps one CPU.
    """
    if gpus_per_worker:
        return 1
    nodes = _cpu_nodes()
    if not nodes:
        return 1
    per_node = -(-num_workers // len(nodes))
    return max(1, int(min(n["Resources"]["CPU"] for n in nodes)) // per_node)


def _cpu_nodes() -> list[dict]:
    """The live nodes of the cluster with at least one CPU (Ray's node records)."""
    import ray

    return [n for n in ray.nodes() if n.get("Alive") and n["Resources"].get("CPU", 0) >= 1]


def _writable_output_dir(path: str) -> Path | StoragePath:
    """``output_dir`` checked writable by writing and removing a probe, before any worker."""
    output_dir = as_path(path)
    probe = output_dir / ".tunefleet-write-test"
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        probe.write_text("")
        if isinstance(probe, StoragePath):
            delete_tree(str(probe))
        else:
            probe.unlink()
    except OSError as err:  # StorageError is an OSError naming the URI and the fix
        reason = str(err) if isinstance(err, StorageError) else err.strerror
        raise LaunchError(
            f"Output directory {str(output_dir)!r} is not writable ({reason}); "
            f"set output_dir=... to a directory you can write"
        ) from err
    return output_dir if isinstance(output_dir, StoragePath) else output_dir.resolve()


def _root_cause(err: BaseException) -> str:
    """The worker's own error message, without Ray's wrapping, on one line.

    Ray wraps a worker's exception in its own (``TrainingFailedError``, worker failures,
    ``RayTaskError``); the first exception below those wrappers is the one the recipe or
    a library raised, and its message is kept, not what caused it in turn (our messages
    name the file and the fix; the causes they wrap do not).
    """
    seen = err
    while _is_ray_wrapper(seen):
        inner = getattr(seen, "cause", None) or seen.__cause__
        worker_failures = getattr(seen, "worker_failures", None)
        if worker_failures:
            inner = next(iter(worker_failures.values()))
        if inner is None or inner is seen:
            break
        seen = inner
    lines = [line.strip() for line in str(seen).strip().splitlines() if line.strip()]
    if not lines:
        return type(seen).__name__
    return lines[0] if not _is_ray_wrapper(seen) else lines[-1]


def _is_ray_wrapper(err: BaseException) -> bool:
    return type(err).__module__.split(".")[0] == "ray"
