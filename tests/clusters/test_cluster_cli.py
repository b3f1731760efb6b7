from typer.testing import CliRunner

from clusters.spec_files import SPECS_DIR
from orchestrator.cli import app


def test_cluster_up_runs_ray_up_on_the_shipped_spec():
    result = CliRunner().invoke(app, ["cluster", "up", "aws", "--yes", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.output.split()[1:] == ["up", "-y", str(SPECS_DIR / "aws.yaml")]


def test_cluster_down_and_status_wrap_ray_down_and_get_head_ip(tmp_path):
    spec = tmp_path / "mine.yaml"
    spec.write_text((SPECS_DIR / "onprem.yaml").read_text())
    down = CliRunner().invoke(app, ["cluster", "down", str(spec), "--dry-run"])
    assert down.output.split()[1:] == ["down", str(spec)]
    status = CliRunner().invoke(app, ["cluster", "status", "gcp", "--dry-run"])
    assert status.output.split()[1:] == ["get-head-ip", str(SPECS_DIR / "gcp.yaml")]


def test_malformed_spec_fails_before_ray_is_called(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("cluster_name: x\nprovider: {type: aws}\n")
    result = CliRunner().invoke(app, ["cluster", "up", str(spec)])
    assert result.exit_code == 1
    assert f"cluster spec '{spec}' has no 'available_node_types'" in result.output
    assert "Traceback" not in result.output


def test_unknown_spec_and_kuberay_manifest_are_refused_with_the_fix():
    unknown = CliRunner().invoke(app, ["cluster", "up", "azure"])
    assert unknown.exit_code == 1 and "not a shipped spec (aws, gcp" in unknown.output
    kuberay = CliRunner().invoke(app, ["cluster", "up", "kuberay-job"])
    assert kuberay.exit_code == 1 and "kubectl apply -f" in kuberay.output


def test_local_status_without_a_cluster_exits_1(tmp_path):
    state = tmp_path / "none.json"
    result = CliRunner().invoke(app, ["cluster", "local", "status", "--state-file", str(state)])
    assert result.exit_code == 1 and "tune cluster local up" in result.output
    down = CliRunner().invoke(app, ["cluster", "local", "down", "--state-file", str(state)])
    assert down.exit_code == 0 and "No local cluster" in down.output
