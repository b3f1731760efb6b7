"""Qwen 2.5 builders: torchtune's names, published parameter counts, biases, tied output."""

import inspect
import re
import types

import pytest
import torch

import modeling.qwen2_5 as qwen
from modeling.builders import LORA_OPTIONS, SIZE_ARGS
from modeling.peft import FrozenNF4Linear, LoRALinear

# Totals of the published checkpoints (model.safetensors of Qwen/Qwen2.5-*), equal to
# vocab*d*(2 if untied else 1) + d + layers*(2d^2 + 2*d*kv_dim + 3*d*ffn + d + 2*kv_dim + 2d).
PUBLISHED = {
    "0_5b": 494_032_768,
    "1_5b": 1_543_714_304,
    "3b": 3_085_938_688,
    "7b": 7_615_616_512,
    "14b": 14_770_033_664,
    "32b": 32_763_876_352,
    "72b": 72_706_203_648,
}
TIED = {"0_5b", "1_5b", "3b", "tiny"}
# torchtune 0.6.1's torchtune.models.qwen2_5.__all__, less the tokenizer.
TORCHTUNE_NAMES = [
    f"{prefix}qwen2_5_{size}"
    for prefix in ("", "lora_")
    for size in (
        "0_5b",
        "1_5b_base",
        "1_5b_instruct",
        "3b",
        "7b_base",
        "7b_instruct",
        "14b_base",
        "14b_instruct",
        "32b_base",
        "32b_instruct",
        "72b_base",
        "72b_instruct",
    )
]
SIZED = [*PUBLISHED, "tiny"] + [
    f"{size}_{kind}"
    for size in ("1_5b", "7b", "14b", "32b", "72b")
    for kind in ("base", "instruct")
]
LORA_ARGS = ("lora_attn_modules", *LORA_OPTIONS)


def test_torchtune_names_and_ours_are_exported():
    exported = set(qwen.__all__)
    assert set(TORCHTUNE_NAMES) <= exported
    for size in SIZED:
        assert {f"qwen2_5_{size}", f"lora_qwen2_5_{size}", f"qlora_qwen2_5_{size}"} <= exported
    assert {"qwen2_5", "lora_qwen2_5", "qwen2_5_tokenizer"} <= exported


@pytest.mark.parametrize("name", sorted(n for n in qwen.__all__ if n.islower()))
def test_every_builder_is_a_plain_function_grep_finds(name):
    fn = getattr(qwen, name)
    assert isinstance(fn, types.FunctionType), type(fn)
    assert fn.__closure__ is None and fn.__qualname__ == name
    assert f"def {name}(" in inspect.getsource(fn)
    assert fn.__module__.startswith("modeling.qwen2_5.") and inspect.getdoc(fn)


def test_builder_keywords_match_the_shared_lists():
    base = inspect.signature(qwen.qwen2_5).parameters
    lora = inspect.signature(qwen.lora_qwen2_5).parameters
    assert all(p.kind is p.KEYWORD_ONLY for p in base.values())
    assert set(base) == {*SIZE_ARGS, "tie_word_embeddings"}
    assert list(lora) == [*LORA_ARGS[:3], *base, *LORA_ARGS[3:]]
    for size in SIZED:
        assert not inspect.signature(getattr(qwen, f"qwen2_5_{size}")).parameters
        sized = inspect.signature(getattr(qwen, f"lora_qwen2_5_{size}")).parameters
        qlora = inspect.signature(getattr(qwen, f"qlora_qwen2_5_{size}")).parameters
        assert list(sized) == list(LORA_ARGS)
        assert list(qlora) == [a for a in LORA_ARGS if a != "quantize_base"]


def count(fn) -> tuple[int, torch.nn.Module]:
    with torch.device("meta"):
        model = fn()
    return sum(p.numel() for p in model.parameters()), model


@pytest.mark.parametrize("size", sorted(PUBLISHED))
def test_parameter_count_equals_the_published_total(size):
    total, model = count(getattr(qwen, f"qwen2_5_{size}"))
    assert total == PUBLISHED[size]
    assert all(p.is_meta for p in model.parameters())
    assert (model.output is None) is (size in TIED)
    attn = model.layers[0].attn
    assert attn.q_proj.bias is not None and attn.k_proj.bias is not None
    assert attn.v_proj.bias is not None and attn.output_proj.bias is None
    assert model.norm.eps == 1e-6 and attn.pos_embeddings.base == 1_000_000.0


@pytest.mark.parametrize("size", ["1_5b", "7b", "14b", "32b", "72b"])
def test_base_and_instruct_differ_only_in_context_and_eps(size):
    _, plain = count(getattr(qwen, f"qwen2_5_{size}"))
    base_total, base = count(getattr(qwen, f"qwen2_5_{size}_base"))
    instruct_total, instruct = count(getattr(qwen, f"qwen2_5_{size}_instruct"))
    assert base_total == instruct_total == PUBLISHED[size]
    assert (base.max_seq_len, instruct.max_seq_len, plain.max_seq_len) == (131_072, 32_768, 32_768)
    base_eps = 1e-5 if size in ("14b", "32b", "72b") else 1e-6
    assert (base.norm.eps, instruct.norm.eps, plain.norm.eps) == (base_eps, 1e-6, 1e-6)


@pytest.mark.parametrize("size", SIZED)
def test_docstring_states_the_parameter_count(size):
    fn = getattr(qwen, f"qwen2_5_{size}")
    number, unit = re.search(r"\((\d+\.\d+)([MB]) parameters\)", fn.__doc__).groups()
    total, _ = count(fn)
    decimals = len(number.split(".")[1])
    assert round(total / {"M": 1e6, "B": 1e9}[unit], decimals) == float(number), total


@pytest.mark.parametrize("size", ["0_5b", "7b_instruct", "72b"])
def test_lora_and_qlora_sized_builders_keep_biases_on_meta(size):
    with torch.device("meta"):
        lora = getattr(qwen, f"lora_qwen2_5_{size}")(["q_proj", "v_proj"], lora_rank=8)
        qlora = getattr(qwen, f"qlora_qwen2_5_{size}")(["q_proj", "v_proj"], lora_rank=8)
    attn, qattn = lora.layers[0].attn, qlora.layers[0].attn
    assert isinstance(attn.q_proj, LoRALinear) and attn.q_proj.lora_a.weight.shape[0] == 8
    assert attn.q_proj.bias.shape == (attn.q_proj.out_dim,) and not attn.q_proj.bias.requires_grad
    assert isinstance(qattn.k_proj, FrozenNF4Linear) and qattn.k_proj.bias is not None
    assert qattn.output_proj.bias is None


def test_tiny_builders_run_and_lora_starts_equal_to_the_base():
    torch.manual_seed(0)
    base = qwen.qwen2_5_tiny().eval()
    assert len(base.layers) == 2 and base.output is None
    tokens = torch.randint(0, 512, (2, 8), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = base(tokens)
    assert expected.shape == (2, 8, 512) and torch.isfinite(expected).all()
    model = qwen.lora_qwen2_5_tiny(["q_proj", "k_proj", "v_proj"], apply_lora_to_mlp=True)
    missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all(k.endswith(("lora_a.weight", "lora_b.weight")) for k in missing)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(tokens), expected, atol=1e-5, rtol=1e-5)


def test_lora_on_a_tied_output_is_refused_and_allowed_untied():
    with pytest.raises(ValueError, match="apply_lora_to_output.*qwen2_5.*tied"):
        qwen.lora_qwen2_5_tiny(["q_proj"], apply_lora_to_output=True)
    with torch.device("meta"):
        model = qwen.lora_qwen2_5_7b(["q_proj"], apply_lora_to_output=True)
    assert isinstance(model.output, LoRALinear)


def test_seed_import_path_resolves_to_the_same_builders():
    from modeling.models.qwen2_5 import qwen2_5_7b_instruct

    assert qwen2_5_7b_instruct is qwen.qwen2_5_7b_instruct
