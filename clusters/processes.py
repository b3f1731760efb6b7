"""Find and stop the processes of one Ray node by its temp dir, never by name.

Several Ray nodes (and other users' Ray instances) share this machine, so a node is
identified by the ``--temp-dir`` it was started with: every Ray daemon of the node names
that directory on its command line, and the node's workers are their descendants.
"""

import contextlib
import time

import psutil


def node_processes(temp_dir: str) -> list[psutil.Process]:
    """The processes started for the node whose temp dir is ``temp_dir``, children included."""
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(temp_dir + "/" in arg or arg.endswith(temp_dir) for arg in proc.cmdline()):
                found[proc.pid] = proc
                for child in proc.children(recursive=True):
                    found[child.pid] = child
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return list(found.values())


def stop_processes(processes: list[psutil.Process], grace_s: float = 5.0) -> int:
    """SIGTERM ``processes``, SIGKILL those alive after ``grace_s``; return how many."""
    for proc in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(processes, timeout=grace_s)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=grace_s)
    time.sleep(0.1)
    return len(processes)


def kill_node(temp_dir: str) -> int:
    """SIGKILL every process of one node at once (a node failure, for fault-tolerance tests)."""
    processes = node_processes(temp_dir)
    for proc in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(processes, timeout=5)
    return len(processes)
