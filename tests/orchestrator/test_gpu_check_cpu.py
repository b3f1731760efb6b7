"""``bench/gpu_check.py`` starts and passes its checks on a CPU (CUDA parts skipped), with
only what the bare GPU machine has: no Ray, bitsandbytes, matplotlib, psutil or S3 clients."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Not on the GPU machine (PyTorch, the Hugging Face libraries, typer, rich, pyarrow and a
# carried omegaconf are): importing any of these fails inside the check, as it would there.
ABSENT_THERE = (
    "ray",
    "bitsandbytes",
    "matplotlib",
    "psutil",
    "boto3",
    "botocore",
    "s3fs",
    "moto",
    "tensorboard",
    "wandb",
    "mlflow",
    "comet_ml",
)
AS_ON_THE_GPU_MACHINE = """
import runpy, sys
for name in {absent!r}:
    sys.modules[name] = None
sys.argv = ["gpu_check.py", *{argv!r}]
runpy.run_path({script!r}, run_name="__main__")
"""


def test_gpu_check_runs_on_cpu_and_every_check_passes(tmp_path):
    out = tmp_path / "summary.json"
    argv = ["--out", str(out), "--workdir", str(tmp_path / "work")]
    script = AS_ON_THE_GPU_MACHINE.format(
        absent=ABSENT_THERE, argv=argv, script=str(REPO / "bench" / "gpu_check.py")
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(out.read_text())
    assert summary["device"] == "cpu"
    assert summary["failed"] == []
    assert summary["nf4_cuda_equals_cpu"] == {"skipped": "no CUDA"}
    for method, check in summary["methods"].items():
        assert check["learns"] and check["resumes"], (method, check)
    assert summary["compile"]["lora"]["matches"] and summary["compile"]["qlora"]["matches"]
    assert summary["packed"]["learns"] and "flex_equals_dense" not in summary["packed"]
    assert summary["offload"]["lora"]["matches"] and summary["offload"]["qlora"]["matches"]
    assert summary["throughput"]["tunefleet_tokens_per_second"] > 0
    assert summary["throughput"]["transformers_peft_tokens_per_second"] > 0
    # each check's scratch folder is gone: the GPU run's full fine-tune writes tens of GB
    assert [p.name for p in (tmp_path / "work").iterdir()] == ["assets"]


def test_gpu_check_reports_failing_checks_and_runs_the_others(tmp_path):
    """A check that raises, and one whose verdict is False, are recorded; the rest run; exit 1."""
    only = "compile,nf4_cuda_equals_cpu,packed"
    script = f"""
import sys
sys.argv = ["gpu_check", "--out", {str(tmp_path / "summary.json")!r},
            "--workdir", {str(tmp_path / "work")!r}, "--only", {only!r}]
sys.path.insert(0, {str(REPO / "bench")!r})
import gpu_check
def broken(*args, **kwargs):
    raise RuntimeError("compile exploded")
gpu_check.check_variant = broken  # compile (offload is not run here)
gpu_check.check_packed = lambda *args: {{"flex_equals_dense": {{"matches": False}}}}
gpu_check.main()
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 1
    assert "gpu_check: failed: compile, packed" in result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["failed"] == ["compile", "packed"]
    assert summary["compile"]["error"] == "RuntimeError: compile exploded"
    assert "broken" in "".join(summary["compile"]["traceback"])
    assert summary["nf4_cuda_equals_cpu"] == {"skipped": "no CUDA"}  # ran after the failure
