"""Checkpoints of tied models that still carry an output projection, Hugging Face and Meta.

Some exporters write ``lm_head.weight`` (a copy of the embedding) into the Hugging Face
checkpoints of tied models (Llama 3.2, Qwen 2.5's small sizes), and Meta's Llama 3.2
``consolidated.00.pth`` stores ``output.weight`` the same way. Loading skips the copy for
a tied model, as torchtune does; anything that is not the embedding's shape is refused;
Meta outputs get their ``output.weight`` back.
"""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from modeling.checkpointing import FullModelHFCheckpointer, FullModelMetaCheckpointer
from modeling.convert import MetaKeyMapper
from modeling.llama3_2 import lora_llama3_2_tiny
from modeling.qwen2_5 import qwen2_5
from tests.modeling.checkpoint_fixtures import logits, saved_hf
from tests.modeling.test_checkpointing_meta import write_meta
from tests.modeling.test_parity_llama3_x import hf_config, random_hf, tiny
from tests.modeling.test_parity_qwen2_5 import SIZES as QWEN_SIZES
from tests.modeling.test_parity_qwen2_5 import tiny_hf as tiny_qwen_hf

pytest.importorskip("transformers")

# family -> (tied HF model, our tied model, checkpointer model_type)
FAMILIES = {
    "llama3_2": (lambda: random_hf(hf_config("llama3_2")), lambda: tiny("llama3_2"), "LLAMA3_2"),
    "qwen2_5": (
        lambda: tiny_qwen_hf(tied=True),
        lambda: qwen2_5(**QWEN_SIZES, tie_word_embeddings=True),
        "QWEN2",
    ),
}


def add_lm_head(directory, lm_head=None):
    """Rewrite the saved single-file checkpoint with an ``lm_head.weight`` (default: a copy)."""
    path = directory / "model.safetensors"
    tensors = load_file(path)
    embedding = tensors["model.embed_tokens.weight"]
    tensors["lm_head.weight"] = embedding.clone() if lm_head is None else lm_head
    save_file(tensors, path, metadata={"format": "pt"})


def saved_tied(family, directory, lm_head=None):
    hf = FAMILIES[family][0]()
    hf.save_pretrained(directory)
    add_lm_head(directory, lm_head)
    return hf, directory


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_tied_models_lm_head_copy_is_skipped(family, tmp_path):
    hf, directory = saved_tied(family, tmp_path / "hf")
    _, build, model_type = FAMILIES[family]
    ckpt = FullModelHFCheckpointer(directory, model_type=model_type)
    assert "output.weight" in list(ckpt.keys())  # the files do hold it
    model = build().eval()
    loaded = ckpt.load_into(model)
    assert "output.weight" not in loaded and "tok_embeddings.weight" in loaded
    expected = logits(hf)
    torch.testing.assert_close(logits(model), expected, atol=1e-4, rtol=1e-4)
    # config.json says tied, so the whole-state-dict load drops it too (torchtune's rule).
    state = ckpt.load_checkpoint()
    assert "output.weight" not in state
    other = build().eval()
    other.load_state_dict(state, strict=True)
    torch.testing.assert_close(logits(other), expected, atol=1e-4, rtol=1e-4)


def test_an_untied_model_still_loads_or_misses_its_output(tmp_path):
    hf, directory = saved_tied("llama3_2", tmp_path / "hf")
    config = json.loads((directory / "config.json").read_text())
    del config["tie_word_embeddings"]  # so check_model lets an untied model through
    (directory / "config.json").write_text(json.dumps(config))
    ckpt = FullModelHFCheckpointer(directory, model_type="llama3_2")
    untied = tiny("llama3_2", tie_word_embeddings=False).eval()
    assert "output.weight" in ckpt.load_into(untied)  # an untied model takes the lm_head
    assert torch.equal(untied.output.weight, hf.lm_head.weight)
    assert "output.weight" in ckpt.load_checkpoint()
    _, bare = saved_tied("llama3_2", tmp_path / "bare")
    (bare / "model.safetensors").unlink()
    hf.save_pretrained(bare)  # no lm_head
    (bare / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        ValueError, match=r"Base weights missing from the checkpoint.*output.weight"
    ):
        FullModelHFCheckpointer(bare, model_type="llama3_2").load_into(untied)


def test_an_output_unlike_the_embedding_is_refused_for_a_tied_model(tmp_path):
    padded = torch.zeros(768 + 8, 128)  # not the (768, 128) embedding: no copy of it
    _, directory = saved_tied("llama3_2", tmp_path / "hf", lm_head=padded)
    ckpt = FullModelHFCheckpointer(directory, model_type="llama3_2")
    message = (
        r"output projection \(Hugging Face lm_head.weight, Meta output.weight\) of shape "
        r"\(776, 128\), unlike its embedding's \(768, 128\), but {}.*tie_word_embeddings=False"
    )
    with pytest.raises(ValueError, match=message.format("the model ties its output")):
        ckpt.load_into(tiny("llama3_2"))
    with pytest.raises(ValueError, match=message.format("config.json sets tie_word_embeddings")):
        ckpt.load_checkpoint()


def write_llama3_2_meta(state, directory, output=True):
    """Meta's Llama 3.2 layout: our tied state dict plus ``output.weight``, a copy."""
    mapper = MetaKeyMapper("llama3_2")
    meta = dict(mapper.to_meta(k, v) for k, v in state.items())
    if output:
        meta["output.weight"] = state["tok_embeddings.weight"].clone()
    directory.mkdir(parents=True)
    torch.save(meta, directory / "consolidated.00.pth")
    params = {"dim": 128, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "vocab_size": 768}
    (directory / "params.json").write_text(json.dumps(params | {"use_scaled_rope": True}))
    (directory / "tokenizer.model").write_bytes(b"tok")
    return directory


@pytest.fixture
def llama3_2_meta(tmp_path):
    """A tiny tied Llama 3.2 as Hugging Face (no lm_head) and as Meta (with output.weight)."""
    hf = random_hf(hf_config("llama3_2"))
    hf.save_pretrained(tmp_path / "hf")
    state = FullModelHFCheckpointer(tmp_path / "hf", model_type="llama3_2").load_checkpoint()
    assert "output.weight" not in state
    return hf, state, write_llama3_2_meta(state, tmp_path / "meta")


def meta_file(directory):
    return torch.load(directory / "consolidated.00.pth", weights_only=True)


def test_meta_llama3_2_loads_as_the_hf_checkpoint(llama3_2_meta, tmp_path):
    hf, state, meta_dir = llama3_2_meta
    ckpt = FullModelMetaCheckpointer(meta_dir, model_type="LLAMA3_2", output_dir=tmp_path / "out")
    assert "output.weight" in list(ckpt.keys())
    loaded = ckpt.load_checkpoint()
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[key], state[key]) for key in state)
    model = tiny("llama3_2").eval()
    assert "output.weight" not in ckpt.load_into(model)
    torch.testing.assert_close(logits(model), logits(hf), atol=1e-4, rtol=1e-4)
    # torchtune's save: output.weight is written back, a copy of the embedding.
    original = meta_file(meta_dir)
    saved = meta_file(ckpt.save_checkpoint(loaded)["merged"])
    assert set(saved) == set(original)
    assert all(torch.equal(saved[key], original[key]) for key in original)


def test_meta_use_scaled_rope_means_the_model_types_factor(llama3_2_meta):
    meta_dir = llama3_2_meta[2]
    model = tiny("llama3_2")
    FullModelMetaCheckpointer(meta_dir, model_type="llama3_2").check_model(model)
    as_llama3 = FullModelMetaCheckpointer(meta_dir, model_type="llama3")  # Llama 3.1's 8
    with pytest.raises(ValueError, match=r"rope_scaling.factor is 8.0 there but the model has "):
        as_llama3.check_model(model)
    params = json.loads((meta_dir / "params.json").read_text())
    stated = params | {"rope_scaling_factor": 32.0}
    (meta_dir / "params.json").write_text(json.dumps(stated))
    FullModelMetaCheckpointer(meta_dir, model_type="llama3").check_model(model)
    del params["use_scaled_rope"]
    (meta_dir / "params.json").write_text(json.dumps(params))
    with pytest.raises(ValueError, match=r"rope_scaling.factor is None there"):
        FullModelMetaCheckpointer(meta_dir, model_type="llama3_2").check_model(model)


def test_meta_llama3_2_outputs_have_output_weight_again(llama3_2_meta, tmp_path):
    _, state, meta_dir = llama3_2_meta
    ckpt = FullModelMetaCheckpointer(meta_dir, model_type="llama3_2")
    model = tiny("llama3_2").eval()
    ckpt.load_into(model)
    with torch.no_grad():
        model.tok_embeddings.weight.add_(1.0)  # as if trained: the copy follows it
    merged = ckpt.write_outputs(model, tmp_path / "full", rank=0)["merged"]
    written = meta_file(merged)
    assert torch.equal(written["output.weight"], model.tok_embeddings.weight)
    assert torch.equal(written["tok_embeddings.weight"], model.tok_embeddings.weight)
    again = FullModelMetaCheckpointer(merged, model_type="llama3_2").load_checkpoint()
    assert set(again) == set(state)
    # A LoRA run merges into the base read from the files, output copy included; a base
    # without one gets it from the embedding.
    lora = dict(lora_attn_modules=["q_proj", "v_proj"], lora_rank=4, lora_alpha=8.0)
    for base in (meta_dir, write_llama3_2_meta(state, tmp_path / "bare", output=False)):
        lora_model = lora_llama3_2_tiny(**lora).eval()
        ckpt = FullModelMetaCheckpointer(base, model_type="llama3_2")
        ckpt.load_into(lora_model)
        out = ckpt.write_outputs(lora_model, tmp_path / base.name, rank=0, lora_config=lora)
        written = meta_file(out["merged"])
        assert torch.equal(written["output.weight"], state["tok_embeddings.weight"])
        assert len(written) == len(state) + 1


def test_meta_shapes_join_the_model_parallel_slices(tmp_path):
    _, hf_dir = saved_hf("llama3", tmp_path / "hf")
    state = FullModelHFCheckpointer(hf_dir, model_type="llama3").load_checkpoint()
    ckpt = FullModelMetaCheckpointer(write_meta("llama3", state, tmp_path / "four", ranks=4))
    assert {key: ckpt.shape(key) for key in list(ckpt.keys())} == {
        key: tuple(tensor.shape) for key, tensor in state.items()
    }
