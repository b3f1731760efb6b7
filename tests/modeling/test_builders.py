"""Builders: plain functions grep finds, published and tiny sizes, named size errors.

Sized builders carry the published sizes, tiny ones build and run anywhere, and generic
builders reject impossible sizes.
"""

import importlib
import inspect
import re
import types

import pytest
import torch

from modeling.builders import LORA_OPTIONS, SIZE_ARGS
from modeling.gemma import gemma, lora_gemma
from modeling.llama3 import llama3, llama3_tiny, lora_llama3

PUBLISHED = {
    "llama3.llama3_8b": 8.03e9,
    "llama3.llama3_70b": 70.6e9,
    "llama2.llama2_7b": 6.74e9,
    "llama2.llama2_13b": 13.0e9,
    "llama2.llama2_70b": 69.0e9,
    "mistral.mistral_7b": 7.24e9,
    "phi3.phi3_mini": 3.82e9,
    "gemma.gemma_2b": 2.51e9,
    "gemma.gemma_7b": 8.54e9,
}
# Explicit sizes for the generic builders' validation tests (the tiny builders take none).
SMALL = dict(
    vocab_size=64,
    num_layers=1,
    num_heads=4,
    num_kv_heads=2,
    embed_dim=32,
    max_seq_len=16,
    intermediate_dim=64,
)


# The sized builders API.md names per family (each also with lora_/qlora_ forms), plus tiny.
SIZES = {
    "llama3": ("8b", "70b", "tiny"),
    "llama2": ("7b", "13b", "70b", "tiny"),
    "mistral": ("7b", "tiny"),
    "phi3": ("mini", "tiny"),
    "gemma": ("2b", "7b", "tiny"),
}
BUILDERS = sorted(
    [f"{family}.{family}" for family in SIZES]
    + [f"{family}.lora_{family}" for family in SIZES]
    + [
        f"{family}.{prefix}{family}_{size}"
        for family, sizes in SIZES.items()
        for size in sizes
        for prefix in ("", "lora_", "qlora_")
    ]
)
LORA_ARGS = ("lora_attn_modules", *LORA_OPTIONS)


def builder(path: str):
    module, name = path.split(".")
    return getattr(importlib.import_module(f"modeling.{module}"), name)


@pytest.mark.parametrize("path", BUILDERS)
def test_every_builder_is_a_plain_function_grep_finds(path):
    family, name = path.split(".")
    fn = builder(path)
    assert isinstance(fn, types.FunctionType), type(fn)
    assert fn.__closure__ is None  # not made by a factory
    assert fn.__qualname__ == fn.__code__.co_name == name
    assert f"def {name}(" in inspect.getsource(fn)
    assert fn.__module__.startswith(f"modeling.{family}.")
    assert name in importlib.import_module(f"modeling.{family}").__all__
    assert inspect.getdoc(fn), name


@pytest.mark.parametrize("family", sorted(SIZES))
def test_builder_keywords_match_the_shared_lists(family):
    base = inspect.signature(builder(f"{family}.{family}")).parameters
    lora = inspect.signature(builder(f"{family}.lora_{family}")).parameters
    assert all(p.kind is p.KEYWORD_ONLY for p in base.values())
    assert set(base) == set(SIZE_ARGS)
    assert list(lora) == [*LORA_ARGS[:3], *base, *LORA_ARGS[3:]]
    for size in SIZES[family]:
        sized = inspect.signature(builder(f"{family}.lora_{family}_{size}")).parameters
        qlora = inspect.signature(builder(f"{family}.qlora_{family}_{size}")).parameters
        assert list(sized) == list(LORA_ARGS)
        assert list(qlora) == [a for a in LORA_ARGS if a != "quantize_base"]
        assert {k: p.default for k, p in sized.items()} == {
            k: p.default for k, p in lora.items() if k in sized
        }


@pytest.mark.parametrize("path", sorted(PUBLISHED))
def test_parameter_count_matches_published_total(path):
    with torch.device("meta"):
        model = builder(path)()
    total = sum(p.numel() for p in model.parameters())
    assert float(f"{total:.3g}") == PUBLISHED[path], total
    assert all(p.is_meta for p in model.parameters())


@pytest.mark.parametrize(
    "path", [f"{family}.{family}_{size}" for family, sizes in SIZES.items() for size in sizes]
)
def test_docstring_states_the_parameter_count(path):
    fn = builder(path)
    number, unit = re.search(r"\((\d+\.\d+)([MB]) parameters\)", fn.__doc__).groups()
    with torch.device("meta"):
        total = sum(p.numel() for p in fn().parameters())
    decimals = len(number.split(".")[1])
    assert round(total / {"M": 1e6, "B": 1e9}[unit], decimals) == float(number), total


@pytest.mark.parametrize("family", sorted(SIZES))
def test_tiny_builders_build_on_meta_and_run_on_cpu(family):
    tiny = builder(f"{family}.{family}_tiny")
    lora_tiny = builder(f"{family}.lora_{family}_tiny")
    qlora_tiny = builder(f"{family}.qlora_{family}_tiny")
    with torch.device("meta"):
        models = [tiny(), lora_tiny(["q_proj", "v_proj"]), qlora_tiny(["q_proj", "v_proj"])]
    assert all(p.is_meta for m in models for p in m.parameters())
    torch.manual_seed(0)
    base = tiny().eval()
    assert len(base.layers) == 2
    vocab = base.tok_embeddings.num_embeddings
    tokens = torch.randint(0, vocab, (2, 8), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = base(tokens)
    assert logits.shape == (2, 8, vocab) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    # The LoRA and QLoRA forms load the tiny base's weights and start out equal to it.
    for build, atol in ((lora_tiny, 1e-5), (qlora_tiny, None)):
        model = build(["q_proj", "v_proj"], apply_lora_to_mlp=True, lora_rank=4)
        missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
        assert not unexpected
        assert missing and all(k.endswith(("lora_a.weight", "lora_b.weight")) for k in missing)
        with torch.no_grad():
            out = model.eval()(tokens)
        assert out.shape == logits.shape and torch.isfinite(out).all()
        if atol is not None:
            torch.testing.assert_close(out, logits, atol=atol, rtol=1e-5)


TOKENIZERS = {
    "llama3": ("llama3_tokenizer", "tiktoken"),
    "llama2": ("llama2_tokenizer", "sentencepiece"),
    "mistral": ("mistral_tokenizer", "sentencepiece"),
    "phi3": ("phi3_mini_tokenizer", "sentencepiece"),
    "gemma": ("gemma_tokenizer", "gemma"),
}


@pytest.mark.parametrize("family", sorted(SIZES))
def test_tiny_vocabulary_holds_the_test_tokenizer(tmp_path, family):
    from tests.modeling import tokenizer_fixtures as fixtures

    name, kind = TOKENIZERS[family]
    path = (
        fixtures.write_tiktoken_ranks(tmp_path)
        if kind == "tiktoken"
        else fixtures.write_sentencepiece(tmp_path, gemma=kind == "gemma")
    )
    tokenizer = builder(f"{family}.{name}")(path)
    with torch.device("meta"):
        model = builder(f"{family}.{family}_tiny")()
    assert tokenizer.vocab_size <= model.tok_embeddings.num_embeddings
    ids, _ = tokenizer.tokenize_messages(
        [{"role": "user", "content": "hello world"}, {"role": "assistant", "content": "Two"}]
    )
    assert max(ids) < model.tok_embeddings.num_embeddings


@pytest.mark.parametrize("path", sorted(PUBLISHED))
def test_lora_and_qlora_sized_builders_work_on_meta(path):
    family, name = path.split(".")
    with torch.device("meta"):
        lora = builder(f"{family}.lora_{name}")(["q_proj", "v_proj"], lora_rank=8)
        qlora = builder(f"{family}.qlora_{name}")(["q_proj", "v_proj"], lora_rank=8)
    assert lora.layers[0].attn.q_proj.lora_a.weight.shape[0] == 8
    assert qlora.layers[0].attn.q_proj.lora_b.weight.is_meta


def test_seed_import_paths_resolve_to_the_same_builders():
    from modeling.models.llama3 import llama3_8b as via_models

    from modeling.llama3 import llama3_8b

    assert via_models is llama3_8b


def test_intermediate_dim_defaults_follow_meta():
    from modeling.builders import llama_intermediate_dim

    assert llama_intermediate_dim(4096) == 11_008  # Llama 2 7B
    assert llama_intermediate_dim(4096, 1024, 1.3) == 14_336  # Llama 3 8B
    with torch.device("meta"):
        model = llama3(
            vocab_size=8, num_layers=1, num_heads=32, num_kv_heads=8, embed_dim=4096, max_seq_len=8
        )
    assert model.layers[0].mlp.w1.weight.shape == (14_336, 4096)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(SMALL, num_heads=5), r"num_heads=5 must divide embed_dim=32"),
        (dict(SMALL, num_kv_heads=3), r"num_kv_heads=3 must divide num_heads=4.*\[1, 2, 4\]"),
        (dict(SMALL, vocab_size=0), r"vocab_size must be a positive integer"),
    ],
)
def test_impossible_sizes_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        llama3(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(lora_attn_modules=["q_proj", "query"]), r"unknown module\(s\) \['query'\].*allowed"),
        (dict(lora_attn_modules="q_proj"), r"lora_attn_modules must be a list"),
        (dict(lora_attn_modules=["q_proj"], lora_rank=0), r"lora_rank must be a positive"),
        (dict(lora_attn_modules=["q_proj"], lora_rank=-4), r"lora_rank must be a positive"),
    ],
)
def test_bad_lora_options_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lora_llama3(**kwargs, **SMALL)


def test_gemma_rejects_lora_on_tied_output():
    sizes = dict(SMALL, head_dim=16)
    with pytest.raises(ValueError, match="apply_lora_to_output=True is not supported for gemma"):
        lora_gemma(["q_proj"], apply_lora_to_output=True, **sizes)
    model = gemma(**sizes)
    assert model.output is None and "output.weight" not in model.state_dict()


def test_output_mask_computes_only_the_selected_logits():
    torch.manual_seed(0)
    model = llama3_tiny()
    tokens = torch.randint(0, 768, (2, 8))
    keep = torch.zeros(2, 8, dtype=torch.bool)
    keep[0, 3:] = True
    keep[1, 6] = True
    full = model(tokens)
    selected = model(tokens, output_mask=keep)
    assert selected.shape == (6, 768)
    torch.testing.assert_close(selected, full[keep])
