"""FullModelMetaCheckpointer: single-file and model-parallel multi-file Meta checkpoints."""

import json

import pytest
import torch

from modeling.checkpointing import FullModelHFCheckpointer, FullModelMetaCheckpointer
from modeling.convert import MetaKeyMapper
from tests.modeling.checkpoint_fixtures import build, logits, saved_hf
from tests.modeling.hf_reference import HF_CONFIGS

pytest.importorskip("transformers")


def write_meta(family, state_dict, directory, ranks=1):
    """Save ``state_dict`` in Meta's names, split across ``ranks`` files as Meta's MP layout."""
    mapper = MetaKeyMapper(family)
    meta = dict(mapper.to_meta(k, v) for k, v in state_dict.items())
    meta["rope.freqs"] = torch.zeros(8)  # Llama 2 files carry it; it holds no weights
    directory.mkdir(parents=True)
    for rank in range(ranks):
        part = {}
        for key, tensor in meta.items():
            dim = mapper.meta_rule(key)[0].split_dim if key != "rope.freqs" else None
            part[key] = tensor if dim is None else tensor.chunk(ranks, dim=dim)[rank].clone()
        torch.save(part, directory / f"consolidated.{rank:02d}.pth")
    cfg = HF_CONFIGS[family][2]
    params = {
        "dim": cfg["hidden_size"],
        "n_layers": cfg["num_hidden_layers"],
        "n_heads": cfg["num_attention_heads"],
        "n_kv_heads": cfg["num_key_value_heads"],
        "vocab_size": cfg["vocab_size"],
        "norm_eps": cfg["rms_norm_eps"],
        "rope_theta": cfg["rope_theta"],
    }
    (directory / "params.json").write_text(json.dumps(params))
    (directory / "tokenizer.model").write_bytes(b"tok")
    return directory


@pytest.mark.parametrize("family", ["llama3", "llama2"])
def test_single_and_multi_file_meta_give_the_transformers_model(family, tmp_path):
    hf, hf_dir = saved_hf(family, tmp_path / "hf")
    state = FullModelHFCheckpointer(hf_dir, model_type=family).load_checkpoint()
    single = write_meta(family, state, tmp_path / "one")
    multi = write_meta(family, state, tmp_path / "four", ranks=4)
    ckpt = FullModelMetaCheckpointer(
        checkpoint_dir=str(single),
        checkpoint_files=["consolidated.00.pth"],
        recipe_checkpoint=None,
        output_dir=tmp_path / "out",
        model_type=family.upper(),
    )
    from_one = ckpt.load_checkpoint()
    from_four = FullModelMetaCheckpointer(multi, model_type=family).load_checkpoint()
    assert set(from_one) == set(from_four) == set(state)
    for key in state:
        assert torch.equal(from_one[key], state[key]) and torch.equal(from_four[key], state[key])
    model = build(family)
    model.load_state_dict(from_four)
    torch.testing.assert_close(logits(model), logits(hf), atol=1e-4, rtol=1e-4)
    out = ckpt.save_checkpoint(from_four)["merged"]
    assert sorted(p.name for p in out.iterdir()) == [
        "consolidated.00.pth",
        "params.json",
        "tokenizer.model",
    ]
    again = FullModelMetaCheckpointer(out, model_type=family).load_checkpoint()
    assert all(torch.equal(again[k], state[k]) for k in state)


def test_meta_rows_of_a_multi_file_checkpoint_equal_slices_of_the_whole(tmp_path):
    _, hf_dir = saved_hf("llama3", tmp_path / "hf")
    state = FullModelHFCheckpointer(hf_dir, model_type="llama3").load_checkpoint()
    ckpt = FullModelMetaCheckpointer(write_meta("llama3", state, tmp_path / "four", ranks=4))
    assert set(ckpt.keys()) == set(state)
    # dim-0 splits (q_proj, output), dim-1 splits (embeddings, w2) and replicated norms
    for key in (
        "layers.0.attn.q_proj.weight",
        "output.weight",
        "tok_embeddings.weight",
        "layers.1.mlp.w2.weight",
        "norm.scale",
    ):
        rows = len(state[key])
        for start, stop in ((0, rows), (3, rows // 2 + 5), (rows - 1, rows), (2, 2)):
            assert torch.equal(ckpt.read_rows(key, start, stop), state[key][start:stop]), key


def test_meta_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match=r"'phi3_mini' has no Meta checkpoint format"):
        FullModelMetaCheckpointer(tmp_path, model_type="phi3_mini")
    (tmp_path / "params.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=r"No consolidated.NN.pth.*params.json"):
        FullModelMetaCheckpointer(tmp_path)
    torch.save(
        {"layers.0.attention.wq.weight": torch.zeros(2, 2)}, tmp_path / "consolidated.00.pth"
    )
    torch.save({}, tmp_path / "consolidated.01.pth")
    with pytest.raises(
        ValueError, match=r"consolidated.01.pth lacks 'layers.0.attention.wq.weight'"
    ):
        FullModelMetaCheckpointer(tmp_path).load_checkpoint()
    torch.save({"layers.0.attention.wqkv.weight": torch.zeros(2)}, tmp_path / "consolidated.00.pth")
    with pytest.raises(ValueError, match=r"Unknown Meta key 'layers.0.attention.wqkv.weight'"):
        FullModelMetaCheckpointer(
            tmp_path, checkpoint_files=["consolidated.00.pth"]
        ).load_checkpoint()
