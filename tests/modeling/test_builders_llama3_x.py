"""Llama 3.1, 3.2 and 3.3 builders: exact published sizes, torchtune's names and keywords.

Counts are exact (from each model's ``config.json`` arithmetic), so a wrong width, a lost
layer or a double-counted tied embedding fails.
"""

import importlib
import inspect
import re
import types

import pytest
import torch

from modeling.builders import LORA_OPTIONS, SIZE_ARGS
from orchestrator.config import resolve_component

PUBLISHED = {
    "llama3_1.llama3_1_8b": 8_030_261_248,
    "llama3_1.llama3_1_70b": 70_553_706_496,
    "llama3_1.llama3_1_405b": 405_853_388_800,
    "llama3_2.llama3_2_1b": 1_235_814_400,
    "llama3_2.llama3_2_3b": 3_212_749_824,
    "llama3_3.llama3_3_70b": 70_553_706_496,
}
SIZES = {"llama3_1": ("8b", "70b", "405b", "tiny"), "llama3_2": ("1b", "3b", "tiny")}
SIZES["llama3_3"] = ("70b", "tiny")
SCALE = {"llama3_1": 8.0, "llama3_2": 32.0, "llama3_3": 8.0}
TIED = {"llama3_1": False, "llama3_2": True, "llama3_3": False}
BUILDERS = sorted(
    [
        f"{f}.{p}{f}_{s}"
        for f, sizes in SIZES.items()
        for s in sizes
        for p in ("", "lora_", "qlora_")
    ]
    + [f"{f}.{p}{f}" for f in ("llama3_1", "llama3_2") for p in ("", "lora_")]
)
LORA_ARGS = ("lora_attn_modules", *LORA_OPTIONS)
# torchtune 0.6.1's keywords for each builder: a torchtune config's arguments must bind.
TT_BASE = (
    "vocab_size",
    "num_layers",
    "num_heads",
    "num_kv_heads",
    "embed_dim",
    "max_seq_len",
    "attn_dropout",
    "rope_base",
    "intermediate_dim",
    "norm_eps",
    "scale_factor",
)
TT_LORA = ("lora_attn_modules", "apply_lora_to_mlp", "apply_lora_to_output")
TT_LORA_OPTIONS = ("lora_rank", "lora_alpha", "lora_dropout", "use_dora", "quantize_base")


def builder(path: str):
    module, name = path.split(".")
    return getattr(importlib.import_module(f"modeling.{module}"), name)


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("path", sorted(PUBLISHED))
def test_parameter_count_is_the_published_total(path):
    family = path.split(".")[0]
    with torch.device("meta"):
        model = builder(path)()
    assert count(model) == PUBLISHED[path]
    assert all(p.is_meta for p in model.parameters())
    assert (model.output is None) is TIED[family]
    assert model.max_seq_len == 131_072
    rope = model.layers[0].attn.pos_embeddings
    assert rope.scaling.factor == SCALE[family] and rope.base == 500_000.0
    assert (rope.scaling.low_freq_factor, rope.scaling.high_freq_factor) == (1.0, 4.0)
    assert rope.scaling.original_max_seq_len == 8192
    assert all(layer.attn.pos_embeddings is rope for layer in model.layers)  # one table


def test_untied_llama3_2_adds_one_output_matrix():
    from modeling.llama3_2 import llama3_2_1b

    with torch.device("meta"):
        untied = llama3_2_1b(tie_word_embeddings=False)
    assert count(untied) == PUBLISHED["llama3_2.llama3_2_1b"] + 128_256 * 2048


@pytest.mark.parametrize("path", BUILDERS)
def test_every_builder_is_a_plain_function_grep_finds(path):
    family, name = path.split(".")
    fn = builder(path)
    assert isinstance(fn, types.FunctionType), type(fn)
    assert fn.__closure__ is None
    assert fn.__qualname__ == fn.__code__.co_name == name
    assert f"def {name}(" in inspect.getsource(fn)
    assert fn.__module__.startswith(f"modeling.{family}.")
    assert name in importlib.import_module(f"modeling.{family}").__all__
    assert inspect.getdoc(fn), name


@pytest.mark.parametrize("path", [f"{f}.{f}_{s}" for f, sizes in SIZES.items() for s in sizes])
def test_docstring_states_the_parameter_count(path):
    fn = builder(path)
    number, unit = re.search(r"\((\d+\.\d+)([MB]) parameters\)", fn.__doc__).groups()
    with torch.device("meta"):
        total = count(fn())
    decimals = len(number.split(".")[1])
    assert round(total / {"M": 1e6, "B": 1e9}[unit], decimals) == float(number), total


@pytest.mark.parametrize("family", ["llama3_1", "llama3_2"])
def test_generic_keywords_are_the_shared_list_with_scale_factor(family):
    base = inspect.signature(builder(f"{family}.{family}")).parameters
    lora = inspect.signature(builder(f"{family}.lora_{family}")).parameters
    tie = ("tie_word_embeddings",) if TIED[family] else ()
    assert all(p.kind is p.KEYWORD_ONLY for p in base.values())
    assert set(base) == (set(SIZE_ARGS) - {"rope_scaling"}) | {"scale_factor", *tie}
    assert base["scale_factor"].default == SCALE[family]
    assert list(lora) == [*LORA_ARGS[:3], *base, *LORA_ARGS[3:]]
    assert set(TT_BASE) <= set(base) and set(TT_LORA + TT_LORA_OPTIONS) <= set(lora)


@pytest.mark.parametrize("family", sorted(SIZES))
def test_sized_lora_keywords_match_the_shared_lists_and_torchtune(family):
    tie = ["tie_word_embeddings"] if TIED[family] else []
    generic = inspect.signature(builder(f"{family}.lora_{family}_tiny")).parameters
    for size in SIZES[family]:
        sized = inspect.signature(builder(f"{family}.lora_{family}_{size}")).parameters
        qlora = inspect.signature(builder(f"{family}.qlora_{family}_{size}")).parameters
        base = inspect.signature(builder(f"{family}.{family}_{size}")).parameters
        assert list(base) == tie
        assert list(sized) == [*LORA_ARGS, *tie]
        assert list(qlora) == [a for a in LORA_ARGS if a != "quantize_base"] + tie
        assert set(TT_LORA + TT_LORA_OPTIONS) <= set(sized)
        assert {k: p.default for k, p in sized.items()} == {
            k: p.default for k, p in generic.items()
        }


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
    assert len(base.layers) == 2 and (base.output is None) is TIED[family]
    assert base.layers[0].attn.pos_embeddings.scaling.factor == SCALE[family]
    tokens = torch.randint(0, 768, (2, 8), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = base(tokens)
    assert logits.shape == (2, 8, 768) and torch.isfinite(logits).all()
    for build, atol in ((lora_tiny, 1e-5), (qlora_tiny, None)):
        for use_dora in (False, True):
            model = build(["q_proj", "v_proj"], apply_lora_to_mlp=True, use_dora=use_dora)
            missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
            assert not unexpected
            # DoRA magnitudes are missing too, and set from the loaded base rows.
            suffixes = ("lora_a.weight", "lora_b.weight", "magnitude")
            assert missing and all(k.endswith(suffixes) for k in missing)
            with torch.no_grad():
                out = model.eval()(tokens)
            assert out.shape == logits.shape and torch.isfinite(out).all()
            if atol is not None:
                torch.testing.assert_close(out, logits, atol=atol, rtol=1e-5)


@pytest.mark.parametrize(
    ("torchtune_path", "ours"),
    [
        ("torchtune.models.llama3_1.lora_llama3_1_8b", "llama3_1.lora_llama3_1_8b"),
        ("torchtune.models.llama3_1.qlora_llama3_1_405b", "llama3_1.qlora_llama3_1_405b"),
        ("torchtune.models.llama3_2.llama3_2_3b", "llama3_2.llama3_2_3b"),
        ("torchtune.models.llama3_3.qlora_llama3_3_70b", "llama3_3.qlora_llama3_3_70b"),
        ("torchtune.models.llama3_1.Llama3ScaledRoPE", "llama3_1.Llama3ScaledRoPE"),
    ],
)
def test_torchtune_paths_resolve_to_our_builders(torchtune_path, ours):
    assert resolve_component(torchtune_path) is builder(ours)


def test_seed_import_paths_and_the_shared_tokenizer():
    from modeling.models.llama3_2 import llama3_2_1b as via_models
    from modeling.models.llama3_3 import llama3_3_70b

    from modeling.llama3 import llama3_tokenizer
    from modeling.llama3_2 import llama3_2_1b

    assert via_models is llama3_2_1b and llama3_3_70b is builder("llama3_3.llama3_3_70b")
    # torchtune's configs for 3.1/3.2/3.3 name llama3's tokenizer; none of these re-export it.
    assert resolve_component("torchtune.models.llama3.llama3_tokenizer") is llama3_tokenizer
    for family in SIZES:
        assert not hasattr(importlib.import_module(f"modeling.{family}"), "llama3_tokenizer")


TORCHTUNE_LLAMA3_2_YAML = """
tokenizer:
  _component_: torchtune.models.llama3.llama3_tokenizer
  path: /tmp/Llama-3.2-1B-Instruct/original/tokenizer.model
  max_seq_len: null
model:
  _component_: torchtune.models.llama3_2.lora_llama3_2_1b
  lora_attn_modules: ['q_proj', 'v_proj', 'output_proj']
  apply_lora_to_mlp: True
  lora_rank: 64
  lora_alpha: 128
  lora_dropout: 0.0
checkpointer:
  _component_: torchtune.training.FullModelHFCheckpointer
  checkpoint_dir: /tmp/Llama-3.2-1B-Instruct/
  checkpoint_files: [model.safetensors]
  recipe_checkpoint: null
  output_dir: /tmp/out
  model_type: LLAMA3_2
"""


def test_torchtune_llama3_2_config_sections_bind():
    """torchtune's own llama3_2/1B_lora model, tokenizer and checkpointer sections."""
    from omegaconf import OmegaConf

    from orchestrator.config.components import check_call

    cfg = OmegaConf.to_container(OmegaConf.create(TORCHTUNE_LLAMA3_2_YAML))
    for key in ("tokenizer", "model", "checkpointer"):
        node = dict(cfg[key])
        assert check_call(resolve_component(node.pop("_component_")), (), node) == [], key
    with torch.device("meta"):
        model = resolve_component(cfg["model"]["_component_"])(
            **{k: v for k, v in cfg["model"].items() if k != "_component_"}
        )
    assert model.output is None and model.layers[0].attn.q_proj.rank == 64
