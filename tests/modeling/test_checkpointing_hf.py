"""FullModelHFCheckpointer: loading, discovery, round trips and sliced reads."""

import json

import pytest
import torch

from modeling.checkpointing import FullModelHFCheckpointer, TensorIndex, read_hf_slice
from tests.modeling.checkpoint_fixtures import build, logits, model_type, saved_hf
from tests.modeling.hf_reference import FAMILIES

pytest.importorskip("transformers")


@pytest.mark.parametrize("family", FAMILIES)
def test_seed_usage_gives_transformers_logits(family, tmp_path):
    hf, directory = saved_hf(family, tmp_path / "hf", max_shard_size="60KB")
    ckpt = FullModelHFCheckpointer(
        checkpoint_dir=str(directory), model_type=model_type(family).upper(), output_dir=tmp_path
    )
    assert len(ckpt.files) > 2  # discovered from the index
    model = build(family)
    model.load_state_dict(ckpt.load_checkpoint())
    torch.testing.assert_close(logits(model), logits(hf), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("safe", [True, False], ids=["safetensors", "bin"])
def test_files_given_or_discovered_load_the_same(safe, tmp_path):
    _, directory = saved_hf("llama3", tmp_path / "hf", max_shard_size="60KB", safe=safe)
    index_name = "model.safetensors.index.json" if safe else "pytorch_model.bin.index.json"
    files = sorted(set(json.loads((directory / index_name).read_text())["weight_map"].values()))
    assert all(name.endswith(".safetensors" if safe else ".bin") for name in files)
    given = FullModelHFCheckpointer(directory, checkpoint_files=files).load_checkpoint()
    found = FullModelHFCheckpointer(directory).load_checkpoint()
    (directory / index_name).unlink()  # discovery from the files present
    globbed = FullModelHFCheckpointer(directory).load_checkpoint()
    assert set(given) == set(found) == set(globbed) == set(build("llama3").state_dict())
    for key in given:
        assert torch.equal(given[key], found[key]) and torch.equal(given[key], globbed[key])


@pytest.mark.parametrize("family", ["llama3", "phi3", "gemma"])
def test_hf_round_trip_keeps_tensors_and_weight_map(family, tmp_path):
    hf, directory = saved_hf(family, tmp_path / "hf", max_shard_size="60KB")
    ckpt = FullModelHFCheckpointer(directory, model_type=model_type(family), output_dir=tmp_path)
    written = ckpt.save_checkpoint(ckpt.load_checkpoint(), max_shard_size="60KB")
    out = written["merged"]
    assert out == tmp_path / "merged"
    index_in = json.loads((directory / "model.safetensors.index.json").read_text())
    index_out = json.loads((out / "model.safetensors.index.json").read_text())
    assert index_out["weight_map"] == index_in["weight_map"]
    assert index_out["metadata"]["total_size"] == index_in["metadata"]["total_size"]
    before = TensorIndex(sorted(directory.glob("*.safetensors")))
    after = TensorIndex(sorted(out.glob("*.safetensors")))
    assert set(before.names()) == set(after.names())
    for key in before.names():
        assert torch.equal(before.read(key), after.read(key)), key
    for name in ("tokenizer.model", "tokenizer_config.json", "generation_config.json"):
        assert (out / name).read_bytes() == (directory / name).read_bytes()
    assert json.loads((out / "config.json").read_text())["dtype"] == "float32"
    assert not list(tmp_path.glob(".merged*"))


def test_merged_output_loads_in_transformers_unchanged(tmp_path):
    import transformers

    hf, directory = saved_hf("llama3", tmp_path / "hf")
    ckpt = FullModelHFCheckpointer(directory, output_dir=tmp_path / "out")
    model = build("llama3")
    model.load_state_dict(ckpt.load_checkpoint())
    with torch.no_grad():
        model.layers[1].mlp.w2.weight.mul_(1.5)  # "fine-tuned"
    out = ckpt.save_checkpoint(model.state_dict(), max_shard_size=100_000)["merged"]
    assert len(list(out.glob("model-*-of-*.safetensors"))) > 1
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(out).float().eval()
    torch.testing.assert_close(logits(reloaded), logits(model), atol=1e-4, rtol=1e-4)


def test_bf16_state_dict_records_its_dtype(tmp_path):
    _, directory = saved_hf("llama2", tmp_path / "hf")
    ckpt = FullModelHFCheckpointer(directory, model_type="llama2", output_dir=tmp_path / "o")
    state = {k: v.bfloat16() for k, v in ckpt.load_checkpoint().items()}
    out = ckpt.save_checkpoint(state)["merged"]
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    assert TensorIndex(list(out.glob("*.safetensors"))).dtype("lm_head.weight") == torch.bfloat16


@pytest.mark.parametrize("family", ["llama3", "phi3"])
@pytest.mark.parametrize("safe", [True, False], ids=["safetensors", "bin"])
def test_sliced_reads_equal_slices_of_the_full_read(family, safe, tmp_path):
    _, directory = saved_hf(family, tmp_path / "hf", max_shard_size="60KB", safe=safe)
    ckpt = FullModelHFCheckpointer(directory, model_type=model_type(family))
    full = ckpt.load_checkpoint()
    index = ckpt.tensor_index()
    # rows 5..37 cut through heads (head_dim 16); the q/k/v and gate/up parts of Phi-3 are fused
    for key in (
        "layers.1.attn.q_proj.weight",
        "layers.1.attn.k_proj.weight",
        "layers.1.attn.v_proj.weight",
        "layers.0.mlp.w1.weight",
        "layers.0.mlp.w3.weight",
        "tok_embeddings.weight",
        "layers.2.sa_norm.scale",
        "output.weight",
    ):
        tensor = full[key]
        for dim, start, stop in ((0, 5, 21), (0, 0, tensor.shape[0]), (0, 16, 32)) + (
            ((1, 3, 40),) if tensor.dim() == 2 else ()
        ):
            stop = min(stop, tensor.shape[dim])
            expected = tensor.narrow(dim, start, stop - start)
            actual = read_hf_slice(index, ckpt.mapper, key, dim, start, stop)
            assert torch.equal(actual, expected), (key, dim, start, stop)


def test_slice_outside_the_tensor_is_named(tmp_path):
    _, directory = saved_hf("llama3", tmp_path / "hf")
    ckpt = FullModelHFCheckpointer(directory)
    with pytest.raises(
        ValueError, match=r"outside 'layers.0.attn.k_proj.weight' of shape \(32, 64\)"
    ):
        ckpt.read_slice("layers.0.attn.k_proj.weight", 0, 0, 33)
