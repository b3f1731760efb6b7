"""Real tiny files for running torchtune's own configs: checkpoints, tokenizers, data.

Each family's checkpoint has the sizes of its ``F_tiny()`` builder, so a config runs with
only its paths overridden and its model swapped for ``modeling.F.lora_F_tiny`` /
``modeling.F.F_tiny``. Hugging Face checkpoints are written by ``transformers`` itself;
Meta checkpoints through the production Meta key map.
"""

import base64
import importlib
import json
from pathlib import Path

import torch

from modeling.builders import decoder_sizes
from modeling.convert import MetaKeyMapper
from orchestrator.demo_assets import train_bpe_ranks
from tests.modeling.hf_reference import HF_CONFIGS
from tests.modeling.tokenizer_fixtures import write_sentencepiece


def tiny_sizes(family: str) -> dict:
    """The generic builder keywords of the family's tiny size."""
    with torch.device("meta"):
        return decoder_sizes(
            getattr(importlib.import_module(f"modeling.{family}"), f"{family}_tiny")()
        )


def write_hf_checkpoint(family: str, directory: Path, seed: int = 0) -> list[str]:
    """A random ``transformers`` model of the family's tiny size; returns its weight files."""
    import transformers

    config_name, model_name, base = HF_CONFIGS[family]
    sizes = tiny_sizes(family)
    hf_sizes = dict(
        base,
        vocab_size=sizes["vocab_size"],
        hidden_size=sizes["embed_dim"],
        intermediate_size=sizes["intermediate_dim"],
        num_hidden_layers=sizes["num_layers"],
        num_attention_heads=sizes["num_heads"],
        num_key_value_heads=sizes["num_kv_heads"],
        max_position_embeddings=sizes["max_seq_len"],
        rms_norm_eps=sizes["norm_eps"],
        rope_theta=sizes["rope_base"],
    )
    if "head_dim" in base:
        hf_sizes["head_dim"] = sizes["head_dim"]
    torch.manual_seed(seed)
    config = getattr(transformers, config_name)(**hf_sizes)
    model = getattr(transformers, model_name)(config).float()
    model.save_pretrained(directory, safe_serialization=True)
    return sorted(path.name for path in directory.glob("*.safetensors"))


def write_meta_checkpoint(family: str, directory: Path, seed: int = 0) -> list[str]:
    """Our tiny model's random weights in Meta's ``consolidated.00.pth`` + ``params.json``."""
    sizes = tiny_sizes(family)
    torch.manual_seed(seed)
    model = getattr(importlib.import_module(f"modeling.{family}"), f"{family}_tiny")()
    mapper = MetaKeyMapper(family)
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(
        dict(mapper.to_meta(key, value) for key, value in model.state_dict().items()),
        directory / "consolidated.00.pth",
    )
    params = {
        "dim": sizes["embed_dim"],
        "n_layers": sizes["num_layers"],
        "n_heads": sizes["num_heads"],
        "n_kv_heads": sizes["num_kv_heads"],
        "vocab_size": sizes["vocab_size"],
        "norm_eps": sizes["norm_eps"],
        "rope_theta": sizes["rope_base"],
    }
    (directory / "params.json").write_text(json.dumps(params))
    return ["consolidated.00.pth"]


def write_tokenizer(family: str, directory: Path) -> Path:
    """The family's tokenizer file: tiktoken ranks (Llama 3) or a sentencepiece model.

    The Llama 3 ranks are a byte-level BPE trained on the Alpaca rows below (as the demo's
    are), so the merged output's Hugging Face ``tokenizer.json`` can be derived from them.
    """
    if family != "llama3":
        return write_sentencepiece(directory, gemma=family == "gemma")
    text = " ".join(" ".join(row.values()) for row in alpaca_rows(64))
    path = directory / "llama3" / "tokenizer.model"
    path.parent.mkdir(parents=True, exist_ok=True)
    ranks = train_bpe_ranks(text, num_ranks=300)
    path.write_text("".join(f"{base64.b64encode(t).decode()} {r}\n" for r, t in enumerate(ranks)))
    return path


def alpaca_rows(rows: int) -> list[dict[str, str]]:
    """``rows`` short Alpaca-style instructions."""
    return [
        {
            "instruction": f"Add {i} and {i + 1}.",
            "input": "" if i % 2 else "the quick brown fox",
            "output": f"The answer is {2 * i + 1}.",
        }
        for i in range(rows)
    ]


def write_alpaca(path: Path, rows: int) -> Path:
    """``rows`` short Alpaca-style instructions as a JSON list."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(alpaca_rows(rows)))
    return path
