"""No command writes over one of its inputs, or over a path that is not its kind of output."""

import hashlib

import pytest
from typer.testing import CliRunner

from modeling.peft import get_adapter_params
from orchestrator.cli import app
from tests.modeling.test_checkpointing_peft import LORA, trained_lora


def digest(directory):
    return {
        p.relative_to(directory): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def merge_inputs(tmp_path):
    model, ckpt, base = trained_lora(tmp_path)
    adapter = ckpt.save_checkpoint(
        None, adapter_weights=get_adapter_params(model), adapter_config=LORA
    )["adapter"]
    return base, adapter


def merge(base, adapter, output, *extra):
    args = ["merge", "--base", str(base), "--adapter", str(adapter), "--output", str(output)]
    return CliRunner().invoke(app, [*args, *extra])


def assert_refused(result, *needles):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, result.output


def test_merge_into_its_own_base_or_adapter_is_refused_and_leaves_them(merge_inputs, tmp_path):
    base, adapter = merge_inputs
    before = digest(base), digest(adapter)
    assert_refused(merge(base, adapter, base), "the same directory as the input", str(base))
    assert_refused(merge(base, adapter, adapter), "the same directory as the input")
    assert_refused(merge(base, adapter, base / "merged"), "is inside the input")
    assert_refused(merge(base, adapter, tmp_path), "a folder holding the input")
    assert (digest(base), digest(adapter)) == before


def test_merge_over_user_files_is_refused_unless_forced(merge_inputs, tmp_path):
    base, adapter = merge_inputs
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.md").write_text("my notes")
    assert_refused(merge(base, adapter, mine), "notes.md", "--force")
    assert (mine / "notes.md").read_text() == "my notes"
    result = merge(base, adapter, mine, "--force")
    assert result.exit_code == 0, result.output
    assert (mine / "model.safetensors.index.json").is_file() and not (mine / "notes.md").exists()


def test_merge_over_a_file_is_refused_and_the_file_kept(merge_inputs, tmp_path):
    base, adapter = merge_inputs
    target = tmp_path / "merged.txt"
    target.write_text("keep me")
    assert_refused(merge(base, adapter, target), "exists and is not a directory", "--force")
    assert target.read_text() == "keep me"
    assert not list(tmp_path.glob(".merged.txt*"))


def test_merge_replaces_its_own_earlier_output(merge_inputs, tmp_path):
    base, adapter = merge_inputs
    out = tmp_path / "merged"
    assert merge(base, adapter, out).exit_code == 0
    first = digest(out)
    assert merge(base, adapter, out).exit_code == 0  # a model directory: replaced in place
    assert digest(out) == first


def test_run_whose_outputs_would_land_in_its_base_is_refused(tmp_path):
    from tests.orchestrator.recipe_fixtures import demo_config

    assets = tmp_path / "assets"
    demo_config(assets, tmp_path / "unused")
    before = digest(assets / "model")
    result = CliRunner().invoke(
        app,
        [
            "run",
            "lora_finetune",
            "--config",
            "demo",
            f"demo_assets={assets}",
            f"output_dir={assets / 'model'}",
            "model._component_=modeling.llama3.lora_llama3",
            "model.vocab_size=768",
            "model.num_layers=1",
            "model.num_heads=4",
            "model.num_kv_heads=2",
            "model.embed_dim=64",
            "model.intermediate_dim=128",
            "model.max_seq_len=256",
        ],
    )
    assert_refused(result, "is inside the input", str(assets / "model"))
    assert digest(assets / "model") == before


def test_each_command_says_which_outputs_are_its_own(tmp_path):
    from modeling.checkpointing.atomic import COMPLETE_MARKER
    from modeling.checkpointing.output_rule import check_output_directory

    marked = {"recognise": lambda names: COMPLETE_MARKER in names, "fix": "do X"}
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    check_output_directory(model_dir, [])  # a model directory: replaceable by default
    with pytest.raises(ValueError, match=r"holds files .*\(config.json\).* or do X"):
        check_output_directory(model_dir, [], **marked)  # but not this command's own
    (model_dir / COMPLETE_MARKER).write_text("complete\n")
    (model_dir / "README.md").write_text("from the repo")
    check_output_directory(model_dir, [], **marked)
    with pytest.raises(ValueError, match=r"README.md.*--force"):
        check_output_directory(model_dir, [])
