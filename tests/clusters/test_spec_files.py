import shlex

import pytest
import yaml
from typer.testing import CliRunner

from clusters.spec_files import SPECS_DIR, SpecError, load_spec, spec_names, spec_path
from orchestrator.cli import app
from orchestrator.config import builtin_config_names, resolve_recipe

LAUNCHER_SPECS = ["aws", "gcp", "onprem"]
KUBERAY_SPECS = ["kuberay-cluster", "kuberay-job"]


def test_every_spec_is_shipped_and_listed():
    assert spec_names() == sorted(LAUNCHER_SPECS + KUBERAY_SPECS)


@pytest.mark.parametrize("name", LAUNCHER_SPECS)
def test_launcher_specs_have_what_ray_up_needs(name):
    data = load_spec(name)
    head = data["available_node_types"][data["head_node_type"]]
    assert head["resources"] == {"CPU": 0, "GPU": 0}
    assert "--num-cpus=0" in " ".join(data["head_start_ray_commands"])
    workers = [n for k, n in data["available_node_types"].items() if k != data["head_node_type"]]
    assert workers and all(node["resources"]["GPU"] == 8 for node in workers)
    assert any("tunefleet" in command for command in data["setup_commands"])
    assert data["provider"]["type"] == {"aws": "aws", "gcp": "gcp", "onprem": "local"}[name]


def test_cloud_node_types_are_the_advertised_gpus():
    aws = load_spec("aws")["available_node_types"]
    assert aws["gpu_h100"]["node_config"]["InstanceType"] == "p5.48xlarge"
    gcp = load_spec("gcp")["available_node_types"]
    assert {n["node_config"]["machineType"] for n in gcp.values()} >= {
        "a3-highgpu-8g",
        "a2-ultragpu-8g",
    }
    onprem = load_spec("onprem")["provider"]
    assert onprem["head_ip"] and onprem["worker_ips"]


@pytest.mark.parametrize("name", KUBERAY_SPECS)
def test_kuberay_specs_keep_the_head_out_and_install_tunefleet(name):
    data = load_spec(name)
    spec = data["spec"] if data["kind"] == "RayCluster" else data["spec"]["rayClusterSpec"]
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    for group in groups:
        (container,) = group["template"]["spec"]["containers"]
        assert "pip install tunefleet" in " ".join(container["args"])
    assert (
        spec["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resources"]["limits"][
            "nvidia.com/gpu"
        ]
        == "8"
    )


def test_rayjob_entrypoint_is_a_real_tune_command():
    data = load_spec("kuberay-job")
    argv = shlex.split(data["spec"]["entrypoint"])
    assert argv[:2] == ["tune", "run"]
    recipe, config = argv[2], argv[argv.index("--config") + 1]
    assert resolve_recipe(recipe) == "lora_finetune"
    assert config in builtin_config_names()
    help_run = CliRunner().invoke(app, ["run", "--help"])
    assert help_run.exit_code == 0
    for flag in (a for a in argv if a.startswith("--")):
        assert flag in help_run.output
    assert "HF_TOKEN" not in data["spec"]["entrypoint"]


def test_a_path_works_as_well_as_a_name(tmp_path):
    copy = tmp_path / "mine.yaml"
    copy.write_text((SPECS_DIR / "aws.yaml").read_text())
    assert spec_path(copy) == copy
    assert load_spec(copy)["cluster_name"] == "tunefleet-aws"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("cluster_name: [unclosed", "is not valid YAML"),
        ("- a list", "not a YAML mapping"),
        ("cluster_name: x\nprovider: {type: aws}\n", "has no 'available_node_types'"),
        (
            "cluster_name: x\nprovider: {type: aws}\nhead_node_type: h\n"
            "available_node_types: {h: {resources: {}, node_config: {}, min_workers: 0}}\n",
            "node type 'h' has no max_workers",
        ),
        (
            "cluster_name: x\nprovider: {type: aws}\nhead_node_type: nope\n"
            "available_node_types: {h: {resources: {}, node_config: {}, min_workers: 0, "
            "max_workers: 0}}\n",
            "head_node_type 'nope' is not one of",
        ),
        ("apiVersion: ray.io/v1\nkind: RayJob\nspec: {}\n", "needs spec.entrypoint"),
        ("apiVersion: ray.io/v1\nkind: RayCluster\nspec: {}\n", "needs headGroupSpec"),
    ],
)
def test_malformed_specs_name_the_file_and_the_key(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(SpecError, match=message) as info:
        load_spec(path)
    assert str(path) in str(info.value)


def test_unknown_spec_lists_the_shipped_names():
    with pytest.raises(SpecError, match="aws, gcp, kuberay-cluster"):
        spec_path("azure")


def test_specs_are_plain_yaml_files():
    for path in SPECS_DIR.glob("*.yaml"):
        assert isinstance(yaml.safe_load(path.read_text()), dict)


def test_cloud_specs_assume_no_shared_file_system():
    """Inputs are hf:// or s3:// URIs; outputs and checkpoints go to a bucket; no shared volume."""
    job = load_spec("kuberay-job")
    argv = shlex.split(job["spec"]["entrypoint"])
    options = dict(a.split("=", 1) for a in argv if "=" in a and not a.startswith("--"))
    assert options["checkpointer.checkpoint_dir"].startswith("hf://")
    assert options["tokenizer.path"].startswith("hf://")
    assert options["output_dir"].startswith("s3://") and options["storage"].startswith("s3://")
    for name in KUBERAY_SPECS:
        text = spec_path(name).read_text()
        assert "persistentVolumeClaim" not in text and "volumeMounts" not in text
    for name, scheme in (("aws", "s3://"), ("gcp", "gs://")):
        comments = "".join(line for line in spec_path(name).read_text().splitlines() if "#" in line)
        assert f"output_dir={scheme}" in comments and f"storage={scheme}" in comments
        assert "checkpoint_dir=hf://" in comments
