"""The demo's base model and tokenizer, generated locally on first use (no downloads).

The tokenizer is a byte-level BPE trained in a second on the shipped demo instructions and
written as a tiktoken rank file, the format of Meta's Llama 3 ``tokenizer.model``. The
model is a tiny Llama 3 at the demo config's sizes (``llama3_tiny``'s), pretrained
for a few seconds as a plain language model on the same text (so the LoRA fine-tune adapts
a model that knows the words, as it would a real base model), then saved as a Hugging Face
checkpoint through the production key map, so the demo exercises the same loading path as
a real download.
"""

import base64
import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from safetensors.torch import save_file

from modeling.builders import decoder_sizes
from modeling.checkpointing import atomic_directory
from modeling.convert import HeadDims, KeyMapper
from modeling.llama3 import NUM_SPECIAL_TOKENS, llama3, llama3_tokenizer
from orchestrator.training.meta_model import build_on_meta

PRETRAIN_STEPS = 120  # a few seconds on a laptop CPU
FINGERPRINT_FILE = "assets.json"  # what the assets were made from
_WORDS = re.compile(r" ?[A-Za-z]+| ?[0-9]| ?[^\sA-Za-z0-9]+|\s+")


def train_bpe_ranks(text: str, num_ranks: int) -> list[bytes]:
    """Byte-level BPE: the 256 bytes, then the most frequent adjacent pair merged, repeatedly.

    Merges never cross the pre-tokenisation boundaries (words with their leading space),
    so the ranks suit tiktoken's Llama 3 pattern.

    Args:
        text: Training text.
        num_ranks: Size of the regular vocabulary (at least 256).
    """
    words = Counter(tuple(bytes([b]) for b in w.encode()) for w in _WORDS.findall(text))
    ranks = [bytes([b]) for b in range(256)]
    while len(ranks) < num_ranks:
        pairs: Counter = Counter()
        for word, count in words.items():
            for pair in zip(word, word[1:], strict=False):
                pairs[pair] += count
        if not pairs:
            break
        (a, b), _ = pairs.most_common(1)[0]
        ranks.append(a + b)
        words = Counter({_merge(word, a, b): count for word, count in words.items()})
    return ranks


def _merge(word: tuple[bytes, ...], a: bytes, b: bytes) -> tuple[bytes, ...]:
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
            out.append(a + b)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def ensure_demo_assets(
    directory: str | Path,
    model_config: dict[str, Any],
    data_path: str | Path,
    seed: int = 0,
) -> Path:
    """Create ``directory/tokenizer.model`` and ``directory/model/`` unless they exist.

    Assets are reused only when their ``assets.json`` says they were made from the same
    data, seed and pretraining steps; assets of another data version are made again.

    Args:
        directory: Where the assets live (reused by later runs).
        model_config: The demo config's ``model`` node; the sizes of the model it builds
            shape the checkpoint.
        data_path: The instruction data the tokenizer is trained on.
        seed: Seed of the random base weights.

    Returns:
        ``directory``.

    Raises:
        FileNotFoundError, ValueError: Naming the data file when it is missing or malformed.
    """
    from orchestrator.datasets.sources import load_rows

    directory = Path(directory)
    load_rows(str(data_path))  # a missing or malformed dataset.source is named as a dataset's
    fingerprint = {
        "data_sha256": hashlib.sha256(Path(data_path).read_bytes()).hexdigest(),
        "seed": seed,
        "pretrain_steps": PRETRAIN_STEPS,
    }
    made = directory / FINGERPRINT_FILE
    whole = (directory / "model" / "config.json").exists() and made.exists()
    if whole and json.loads(made.read_text()) == fingerprint:
        return directory
    sizes = decoder_sizes(build_on_meta(OmegaConf.create(model_config), torch.float32))
    rows = json.loads(Path(data_path).read_text())
    # Each sample's text with the chat format's role names, as every training sequence has.
    text = "\n".join(" ".join(["user", *map(str, row.values()), "assistant"]) for row in rows)
    ranks = train_bpe_ranks(text, sizes["vocab_size"] - NUM_SPECIAL_TOKENS)
    if len(ranks) + NUM_SPECIAL_TOKENS != sizes["vocab_size"]:
        raise ValueError(
            f"model.vocab_size={sizes['vocab_size']} needs {sizes['vocab_size'] - 256} BPE "
            f"ranks but the demo data only supports {len(ranks)}; lower model.vocab_size"
        )
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = directory / "tokenizer.model"
    tokenizer.with_suffix(".tmp").write_text(
        "".join(f"{base64.b64encode(tok).decode()} {rank}\n" for rank, tok in enumerate(ranks))
    )
    tokenizer.with_suffix(".tmp").replace(tokenizer)
    encode = llama3_tokenizer(tokenizer).encode
    token_ids = [i for row in rows for i in encode(" ".join(str(v) for v in row.values() if v))]
    with atomic_directory(directory / "model") as tmp:
        _write_checkpoint(tmp, sizes, token_ids, seed)
    made.write_text(json.dumps(fingerprint, indent=1) + "\n")  # last: the assets are whole
    return directory


def pretrain(
    model: torch.nn.Module, token_ids: list[int], steps: int = PRETRAIN_STEPS, seed: int = 0
) -> float:
    """Train ``model`` briefly as a language model on random windows of ``token_ids``.

    Returns:
        The last step's loss.
    """
    data = torch.tensor(token_ids)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    window = min(64, len(token_ids) - 1)
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        starts = torch.randint(0, len(token_ids) - window, (16,), generator=generator)
        batch = torch.stack([data[s : s + window + 1] for s in starts.tolist()])
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss.item()


def _write_checkpoint(
    directory: Path,
    sizes: dict[str, Any],
    token_ids: list[int],
    seed: int,
) -> None:
    torch.manual_seed(seed)
    model = llama3(**sizes)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.normal_(0.0, 0.02)
    pretrain(model, token_ids, seed=seed)
    heads, kv_heads, dim = sizes["num_heads"], sizes["num_kv_heads"], sizes["embed_dim"]
    mapper = KeyMapper("llama3", HeadDims(heads, kv_heads, dim // heads))
    save_file(
        dict(mapper.to_hf(model.state_dict())),
        directory / "model.safetensors",
        metadata={"format": "pt"},
    )
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": sizes["vocab_size"],
        "hidden_size": dim,
        "intermediate_size": model.layers[0].mlp.w1.weight.shape[0],
        "num_hidden_layers": sizes["num_layers"],
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "max_position_embeddings": sizes["max_seq_len"],
        "rms_norm_eps": sizes.get("norm_eps", 1e-5),
        "rope_theta": sizes.get("rope_base", 500_000.0),
        "hidden_act": "silu",
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "bos_token_id": sizes["vocab_size"] - NUM_SPECIAL_TOKENS,
        "eos_token_id": sizes["vocab_size"] - NUM_SPECIAL_TOKENS + 1,
    }
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")
