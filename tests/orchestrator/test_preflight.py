"""Runs that would train on the wrong thing stop before any worker starts, saying why."""

import pytest
import torch
from typer.testing import CliRunner

from modeling.llama3 import llama3
from orchestrator.cli import app
from orchestrator.config import instantiate, load_config
from orchestrator.preflight import check_vocabularies
from tests.orchestrator.recipe_fixtures import TINY_MODEL


def run(assets, out, *extra, recipe="lora_finetune"):
    args = [f"demo_assets={assets}", f"output_dir={out}", *TINY_MODEL, *extra]
    return CliRunner().invoke(app, ["run", recipe, "--config", "demo", *args])


def assert_stopped(result, out, *needles):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, result.output
    assert not out.exists() or not any(out.iterdir())  # nothing that looks complete


LORA_KEYS = ("lora_attn_modules", "apply_lora_to_mlp", "apply_lora_to_output", "lora_rank")
FULL = ["model._component_=modeling.llama3.llama3", *[f"~model.{k}" for k in LORA_KEYS]]


@pytest.mark.parametrize("recipe", ["lora_finetune", "full_finetune"])
def test_a_model_smaller_than_its_checkpoint_is_refused(demo_assets_dir, tmp_path, recipe):
    extra = FULL + ["~model.lora_alpha", "~model.lora_dropout"] if recipe == "full_finetune" else []
    result = run(demo_assets_dir, tmp_path / "out", "model.vocab_size=400", *extra, recipe=recipe)
    assert_stopped(
        result, tmp_path / "out", "config.json", "vocab_size is 768 there", "vocab_size=400"
    )


def test_a_tokenizer_larger_than_the_model_is_named(demo_assets_dir, tmp_path):
    cfg = load_config("demo", [f"demo_assets={demo_assets_dir}", *TINY_MODEL])
    tokenizer = instantiate(cfg.tokenizer)
    small = llama3(
        vocab_size=300, num_layers=1, num_heads=4, num_kv_heads=2, embed_dim=64, max_seq_len=64
    )
    with pytest.raises(ValueError, match=r"tokenizer has 768 tokens but the model has only 300"):
        check_vocabularies(tokenizer, small)


def test_truncation_that_leaves_no_label_stops_the_run(demo_assets_dir, tmp_path):
    result = run(demo_assets_dir, tmp_path / "out", "tokenizer.max_seq_len=8")
    assert_stopped(result, tmp_path / "out", "keeps a label token", "max_seq_len=8")


def test_a_closed_address_fails_in_seconds(demo_assets_dir, tmp_path):
    import socket
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    result = run(demo_assets_dir, tmp_path / "out", "--address", f"127.0.0.1:{port}")
    assert time.monotonic() - start < 10
    assert_stopped(result, tmp_path / "out", f"Cannot reach the Ray cluster at '127.0.0.1:{port}'")


def test_a_refused_pickle_names_its_file_on_one_line(tmp_path):
    import pickle

    from modeling.checkpointing.readers import load_torch_file
    from orchestrator.launcher import _root_cause

    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(pickle.dumps({"weight": object()}))
    with pytest.raises(ValueError) as caught:
        load_torch_file(path)
    ray_wrapper = type("TrainingFailedError", (RuntimeError,), {"__module__": "ray.train"})
    wrapped = ray_wrapper("Training failed:\nTraceback ...")
    wrapped.__cause__ = caught.value
    message = _root_cause(wrapped)
    assert str(path) in message and "weights-only" in message and "\n" not in message


def test_merge_of_an_adapter_for_another_size_names_the_tensor(tmp_path):
    from safetensors.torch import load_file, save_file

    from modeling.peft import get_adapter_params
    from tests.modeling.test_checkpointing_peft import LORA, trained_lora

    model, ckpt, base = trained_lora(tmp_path)
    adapter = ckpt.save_checkpoint(
        None, adapter_weights=get_adapter_params(model), adapter_config=LORA
    )["adapter"]
    tensors = load_file(adapter / "adapter_model.safetensors")
    key = next(k for k in tensors if k.endswith("q_proj.lora_B.weight"))
    tensors[key] = torch.zeros(tensors[key].shape[0] * 2, tensors[key].shape[1])
    save_file(tensors, adapter / "adapter_model.safetensors")
    args = ["--base", str(base), "--adapter", str(adapter), "--output", str(tmp_path / "m")]
    result = CliRunner().invoke(app, ["merge", *args])
    assert_stopped(result, tmp_path / "m", "q_proj.weight", "does not fit the base", "x")
