"""``tune ls``, ``tune cp``, ``tune cat`` and ``tune validate`` through the Typer app."""

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.config import builtin_config_names, builtin_config_path


def tune(*args: str):
    return CliRunner().invoke(app, list(args))


def assert_user_error(result, *fragments: str) -> None:
    """Exit 1, every fragment on stderr, and no traceback."""
    assert result.exit_code == 1, result.output
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# --- ls --------------------------------------------------------------------------------


def test_ls_lists_recipes_and_every_builtin():
    result = tune("ls")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["RECIPE", "CONFIG"]
    assert lines[1].split() == ["full_finetune", "gemma/2B_full"]
    lora_row = next(line for line in lines if line.startswith("lora_finetune"))
    assert lora_row.split() == ["lora_finetune", "demo"]
    listed = [line.split()[-1] for line in lines[1:] if line.strip() and "accepted" not in line]
    assert sorted(listed) == sorted(builtin_config_names())
    assert "lora_finetune_distributed" in result.stdout


# --- cp --------------------------------------------------------------------------------


def test_cp_copies_the_builtin_verbatim(tmp_path):
    dest = tmp_path / "mine.yaml"
    result = tune("cp", "llama3/8B_lora", str(dest))
    assert result.exit_code == 0, result.output
    assert dest.read_text() == builtin_config_path("llama3/8B_lora").read_text()
    assert f"Copied llama3/8B_lora to {dest}" in result.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["mine.yaml"]  # no temporary left behind


def test_cp_accepts_suffix_adds_yaml_and_copies_into_a_directory(tmp_path):
    assert tune("cp", "demo.yaml", str(tmp_path / "noext")).exit_code == 0
    assert (tmp_path / "noext.yaml").is_file()
    assert tune("cp", "gemma/2B_lora", str(tmp_path)).exit_code == 0
    assert (tmp_path / "2B_lora.yaml").read_text() == builtin_config_path(
        "gemma/2B_lora"
    ).read_text()


def test_cp_refuses_to_overwrite_without_force(tmp_path):
    dest = tmp_path / "mine.yaml"
    dest.write_text("keep me\n")
    result = tune("cp", "demo", str(dest))
    assert_user_error(result, "already exists", "--force")
    assert dest.read_text() == "keep me\n"
    result = tune("cp", "demo", str(dest), "--force")
    assert result.exit_code == 0, result.output
    assert dest.read_text() == builtin_config_path("demo").read_text()


def test_cp_missing_destination_directory(tmp_path):
    dest = tmp_path / "missing" / "dir" / "mine.yaml"
    result = tune("cp", "demo", str(dest))
    assert_user_error(result, f"directory {dest.parent} does not exist", "--make-parents")
    assert not dest.parent.exists()
    assert tune("cp", "demo", str(dest), "--make-parents").exit_code == 0
    assert dest.is_file()


def test_cp_unknown_builtin_suggests_closest(tmp_path):
    result = tune("cp", "llama3/8B_lroa", str(tmp_path / "x.yaml"))
    assert_user_error(result, "unknown built-in config 'llama3/8B_lroa'", "'llama3/8B_lora'")
    assert not (tmp_path / "x.yaml").exists()


# --- cat -------------------------------------------------------------------------------


def test_cat_prints_the_yaml_with_comments():
    result = tune("cat", "mistral/7B_qlora")
    assert result.exit_code == 0, result.output
    assert result.stdout == builtin_config_path("mistral/7B_qlora").read_text()


def test_cat_a_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("a: 1")
    result = tune("cat", str(path))
    assert result.exit_code == 0
    assert result.stdout == "a: 1\n"


def test_cat_unknown_builtin():
    assert_user_error(tune("cat", "phi3/mini_lroa"), "Did you mean 'phi3/mini_lora'?")


# --- validate --------------------------------------------------------------------------


def test_validate_builtin_with_overrides_succeeds():
    pytest.importorskip("modeling.checkpointing")
    pytest.importorskip("orchestrator.datasets")
    pytest.importorskip("orchestrator.training.loss")
    pytest.importorskip("orchestrator.training.lr_schedulers")
    result = tune("validate", "llama3/8B_lora", "model.lora_rank=16", "batch_size=4")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Config is well-formed!"


def test_validate_user_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(
        """output_dir: /tmp/x
model: {_component_: modeling.llama3.llama3_8b}
tokenizer: {_component_: modeling.llama3.llama3_tokenizer, path: /t/tokenizer.model}
checkpointer: {_component_: torch.nn.Identity}
dataset: {_component_: torch.nn.Dropout, inplace: False}
optimizer: {_component_: torch.optim.SGD, lr: 0.1}
"""
    )
    result = tune("validate", str(path))
    assert result.exit_code == 0, result.output
    assert "Config is well-formed!" in result.stdout


def test_validate_argument_typo_names_key_and_suggestion():
    result = tune("validate", "llama3/8B_lora", "model.lora_rnk=16")
    assert_user_error(result, "model.lora_rnk", "Did you mean 'lora_rank'?")


def test_validate_component_typo_suggests_builder():
    result = tune("validate", "llama3/8B_lora", "model._component_=modeling.llama3.lora_llama3_8bb")
    assert_user_error(result, "model._component_", "Did you mean 'lora_llama3_8b'?")


def test_validate_unknown_override_key():
    result = tune("validate", "demo", "epoch=3")
    assert_user_error(result, "no key 'epoch'", "Did you mean 'epochs'?")


def test_validate_unknown_builtin():
    assert_user_error(tune("validate", "llama2/7B_lroa"), "Did you mean 'llama2/7B_lora'?")


def test_validate_missing_file(tmp_path):
    missing = tmp_path / "absent.yaml"
    assert_user_error(tune("validate", str(missing)), "absent.yaml", "not found")


def test_validate_malformed_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("output_dir: /x\nmodel:\n  _component_: modeling.llama3.llama3_8b\n bad: 1\n")
    result = tune("validate", str(path))
    assert_user_error(result, str(path), "line 4")


def test_validate_shows_notes_for_replaced_torchtune_components(tmp_path):
    pytest.importorskip("orchestrator.training.metric_logger")
    path = tmp_path / "tt.yaml"
    path.write_text(
        """output_dir: /tmp/x
model: {_component_: torchtune.models.llama3.llama3_8b}
tokenizer: {_component_: torchtune.models.llama3.llama3_tokenizer, path: /t}
checkpointer: {_component_: torch.nn.Identity}
dataset: {_component_: torch.nn.Dropout}
optimizer: {_component_: bitsandbytes.optim.PagedAdamW, lr: 0.1}
"""
    )
    result = tune("validate", str(path))
    assert result.exit_code == 0, result.output
    assert "Note: optimizer: PagedAdamW is replaced by torch.optim.AdamW" in result.stderr
