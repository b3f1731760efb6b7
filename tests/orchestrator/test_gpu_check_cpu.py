"""``bench/gpu_check.py`` starts and passes its checks on a CPU (CUDA parts skipped)."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_gpu_check_runs_on_cpu_and_every_check_passes(tmp_path):
    out = tmp_path / "summary.json"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "gpu_check.py"),
            "--out",
            str(out),
            "--workdir",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(out.read_text())
    assert summary["device"] == "cpu"
    assert summary["nf4_cuda_equals_cpu"] == {"skipped": "no CUDA"}
    for method, check in summary["methods"].items():
        assert check["learns"] and check["resumes"], (method, check)
    assert summary["compile"]["matches"]
    assert summary["throughput"]["tunefleet_tokens_per_second"] > 0
    assert summary["throughput"]["transformers_peft_tokens_per_second"] > 0
