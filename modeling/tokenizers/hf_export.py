"""Hugging Face tokenizer files for a run's outputs, built from the tokenizer it trained with.

``transformers.AutoTokenizer.from_pretrained(merged)`` (and vLLM, TGI) need tokenizer files
next to the weights, and a checkpoint given as bare weights, a Meta download or the demo's
tiny model has none. :func:`hf_tokenizer_files` writes them from our tokenizer:

- Llama 3 (tiktoken ranks): a ``tokenizer.json`` whose byte-level BPE vocabulary and merges
  are recovered from the ranks (a token's merge is the last step of encoding its own bytes
  with the lower ranks), with Meta's pre-tokenisation regex and the 256 special tokens.
- The sentencepiece families: the ``tokenizer.model`` itself, which ``transformers`` reads
  into its fast tokenizer, with the added tokens of the family.
- Qwen 2.5 (byte-level BPE): a ``tokenizer.json`` of its vocabulary and merges (whichever
  files it was read from), NFC, Qwen's split regex, and its added tokens with their ids,
  control tokens special and the tool-call and fill-in-the-middle markers plain, as Qwen
  publishes it; the chat template is Qwen's published one, whose default system turn our
  ``tokenize_messages`` writes too.

Each kind also gets ``tokenizer_config.json`` with a chat template that renders exactly the
tokens ``tokenize_messages(messages, add_end_tokens=False)`` gives (and, with
``add_generation_prompt``, the open assistant turn ``tune generate`` continues),
``special_tokens_map.json`` and ``generation_config.json`` whose ``eos_token_id`` lists the
stop tokens. Known differences: special-token spellings typed in text are special to
``transformers`` but plain text to us, and for sentencepiece models ``transformers`` adds no
word-start marker before text that already begins with a space.
"""

import json
from collections.abc import Collection, Mapping
from typing import Any

from modeling.tokenizers.byte_level_bpe import BYTE_ENCODER, ByteLevelBPE
from modeling.tokenizers.chat_tokenizer import ChatTokenizer
from modeling.tokenizers.qwen2_5_chat_template import QWEN2_5_CHAT_TEMPLATE
from modeling.tokenizers.sentencepiece_bpe import SentencePieceTokenizer

# What each family's files declare. The templates mirror each family's ``_format_messages``.
LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + "
    "message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{% endif %}"
)
_SYSTEM_FIRST = (
    "{% if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] %}"
    "{% set messages = messages[1:] %}{% else %}{% set system = none %}{% endif %}"
)
LLAMA2_TEMPLATE = (
    _SYSTEM_FIRST + "{% for message in messages %}{% if message['role'] == 'user' %}"
    "{% if loop.first and system is not none %}"
    "{% set content = '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{{ bos_token + '[INST] ' + content | trim + ' [/INST]' }}"
    "{% else %}{{ ' ' + message['content'] | trim + ' ' + eos_token }}{% endif %}{% endfor %}"
)
MISTRAL_TEMPLATE = (
    _SYSTEM_FIRST + "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}{% if loop.first and system is not none %}"
    "{{ '[INST] ' + system + '\\n\\n' + message['content'] + ' [/INST]' }}"
    "{% else %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}"
    "{% else %}{{ ' ' + message['content'] + eos_token }}{% endif %}{% endfor %}"
)
PHI3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' + '\\n' + message['content'] + '<|end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' + '\\n' }}{% endif %}"
)
GEMMA_TEMPLATE = (
    _SYSTEM_FIRST + "{{ bos_token }}{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else 'user' %}"
    "{% if loop.first and system is not none %}"
    "{% set content = system + '\\n\\n' + message['content'] | trim %}"
    "{% else %}{% set content = message['content'] | trim %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\\n' + content + '<end_of_turn>' + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)
# builder -> (transformers tokenizer class, chat template) for sentencepiece families.
SENTENCEPIECE_FAMILIES = {
    "llama2_tokenizer": ("LlamaTokenizerFast", LLAMA2_TEMPLATE),
    "mistral_tokenizer": ("LlamaTokenizerFast", MISTRAL_TEMPLATE),
    "phi3_mini_tokenizer": ("LlamaTokenizerFast", PHI3_TEMPLATE),
    "gemma_tokenizer": ("GemmaTokenizerFast", GEMMA_TEMPLATE),
}
# Files this module writes; the HF checkpointers copy the same names from an input.
EXPORTED_FILES = (
    "tokenizer.json",
    "tokenizer.model",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
)


def hf_tokenizer_files(
    tokenizer: ChatTokenizer, generation_config: Mapping[str, Any] | None = None
) -> dict[str, bytes]:
    """Hugging Face tokenizer files of ``tokenizer``, by file name.

    Args:
        tokenizer: A family tokenizer (``llama3_tokenizer(...)``, ``gemma_tokenizer(...)``).
        generation_config: The base model's ``generation_config.json``, kept with its token
            ids set to this tokenizer's.

    Returns:
        File name -> contents; empty for a tokenizer kind without an export.
    """
    builder = getattr(tokenizer, "builder", "")
    if builder == "llama3_tokenizer":
        files = _tiktoken_files(tokenizer)
    elif builder in SENTENCEPIECE_FAMILIES and isinstance(tokenizer, SentencePieceTokenizer):
        files = _sentencepiece_files(tokenizer, *SENTENCEPIECE_FAMILIES[builder])
    elif builder == "qwen2_5_tokenizer" and isinstance(
        getattr(tokenizer, "_bpe", None), ByteLevelBPE
    ):
        files = _byte_level_bpe_files(tokenizer)
    else:
        return {}
    generation = dict(generation_config or {})
    generation.update(
        bos_token_id=tokenizer.bos_id,
        eos_token_id=list(tokenizer.stop_tokens),
        pad_token_id=tokenizer.pad_id,
    )
    generation.setdefault("_from_model_config", False)
    files["generation_config.json"] = _json(generation)
    return files


def tiktoken_merges(ranks: Mapping[bytes, int]) -> list[tuple[bytes, bytes]]:
    """The BPE merges, in rank order, that rebuild every multi-byte token of ``ranks``.

    A token's merge is the pair its own bytes reach when encoded with only the ranks below
    its own: the last step before the token itself forms (Meta's files are built so). A
    token those ranks cannot reach in two parts is split where both halves rank lowest,
    which is where tiktoken would join it once both halves exist.
    """
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) == 1:
            continue
        parts = _bpe_parts(ranks, token, max_rank=rank)
        if len(parts) != 2:
            splits = [
                (token[:i], token[i:])
                for i in range(1, len(token))
                if token[:i] in ranks and token[i:] in ranks
            ]
            if not splits:
                continue  # only ever a whole pre-token, which needs no merge
            parts = min(splits, key=lambda split: max(ranks[split[0]], ranks[split[1]]))
        merges.append((parts[0], parts[1]))
    return merges


def _bpe_parts(ranks: Mapping[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    parts = [bytes([b]) for b in token]
    while len(parts) > 1:
        best, best_rank = None, max_rank
        for index in range(len(parts) - 1):
            rank = ranks.get(parts[index] + parts[index + 1])
            if rank is not None and rank < best_rank:
                best, best_rank = index, rank
        if best is None:
            break
        parts[best : best + 2] = [parts[best] + parts[best + 1]]
    return parts


def _tiktoken_files(tokenizer) -> dict[str, bytes]:
    bpe = tokenizer._bpe  # the Llama 3 tokenizer's TikTokenBPE
    ranks: dict[bytes, int] = bpe.ranks
    to_unicode = BYTE_ENCODER

    def spell(token: bytes) -> str:
        return "".join(to_unicode[b] for b in token)

    specials = [(token_id, text) for text, token_id in bpe.special_tokens.items()]
    bos = tokenizer.special_tokens[tokenizer.bos_id]
    tokenizer_json = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [_added_token(token_id, text) for token_id, text in specials],
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {
                    "type": "Split",
                    "pattern": {"Regex": bpe.pattern},
                    "behavior": "Isolated",
                    "invert": False,
                },
                {
                    "type": "ByteLevel",
                    "add_prefix_space": False,
                    "trim_offsets": True,
                    "use_regex": False,
                },
            ],
        },
        # bos in front, as Meta's Hugging Face tokenizer adds it
        "post_processor": _bos_processor(bos, tokenizer.bos_id),
        "decoder": {
            "type": "ByteLevel",
            "add_prefix_space": True,
            "trim_offsets": True,
            "use_regex": True,
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": True,  # a whole pre-token found in the vocabulary is one token
            "vocab": {spell(token): rank for token, rank in ranks.items()},
            "merges": [[spell(a), spell(b)] for a, b in tiktoken_merges(ranks)],
        },
    }
    names = {
        "bos_token": bos,
        "eos_token": tokenizer.special_tokens[tokenizer.eos_id],
        "pad_token": tokenizer.special_tokens[tokenizer.pad_id],
    }
    config = _tokenizer_config("PreTrainedTokenizerFast", LLAMA3_TEMPLATE, names, specials)
    return {
        "tokenizer.json": _json(tokenizer_json),
        "tokenizer_config.json": _json(config),
        "special_tokens_map.json": _json(names),
    }


def _sentencepiece_files(
    tokenizer: SentencePieceTokenizer, tokenizer_class: str, template: str
) -> dict[str, bytes]:
    processor = tokenizer._processor
    names = {
        "bos_token": processor.id_to_piece(tokenizer.bos_id),
        "eos_token": tokenizer.special_tokens.get(tokenizer.eos_id)
        or processor.id_to_piece(tokenizer.eos_id),
        "unk_token": processor.id_to_piece(processor.unk_id()),
        "pad_token": tokenizer.special_tokens.get(tokenizer.pad_id)
        or processor.id_to_piece(tokenizer.pad_id),
    }
    specials = sorted(tokenizer.special_tokens.items())
    config = _tokenizer_config(tokenizer_class, template, names, specials)
    # Meta's reference (and ours) starts every piece of text with sentencepiece's word-start
    # marker, also after a special token: transformers' "legacy" behaviour.
    config.update(legacy=True, add_bos_token=True, add_eos_token=False, add_prefix_space=None)
    if tokenizer_class == "GemmaTokenizerFast":
        config.pop("legacy")
    return {
        "tokenizer.model": processor.serialized_model_proto(),
        "tokenizer_config.json": _json(config),
        "special_tokens_map.json": _json(names),
    }


def _byte_level_bpe_files(tokenizer) -> dict[str, bytes]:
    """Qwen 2.5's files: its published pipeline over our vocabulary, merges and added tokens."""
    bpe: ByteLevelBPE = tokenizer._bpe
    byte_level = {"add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    added = sorted(bpe.added_tokens.values(), key=lambda token: token.id)
    bos = None if tokenizer.bos_id is None else tokenizer.special_tokens[tokenizer.bos_id]
    tokenizer_json = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [_added_token(t.id, t.content, t.special) for t in added],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {
                    "type": "Split",
                    "pattern": {"Regex": bpe.pattern},
                    "behavior": "Isolated",
                    "invert": False,
                },
                {"type": "ByteLevel", **byte_level},
            ],
        },
        # Qwen has no bos; one configured on our tokenizer is added by encode, so here too.
        "post_processor": (
            {"type": "ByteLevel", **byte_level}
            if bos is None
            else _bos_processor(bos, tokenizer.bos_id)
        ),
        "decoder": {"type": "ByteLevel", **byte_level},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "",
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,  # every pre-token is merged, as ours are
            "vocab": bpe.vocab,
            "merges": [list(pair) for pair in bpe.merges],
        },
    }
    names = {
        "bos_token": bos,
        "eos_token": tokenizer.special_tokens[tokenizer.eos_id],
        "pad_token": tokenizer.special_tokens[tokenizer.pad_id],
    }
    specials = [(t.id, t.content) for t in added]
    plain = {t.id for t in added if not t.special}
    config = _tokenizer_config("Qwen2Tokenizer", QWEN2_5_CHAT_TEMPLATE, names, specials, plain)
    config.update(
        unk_token=None,
        additional_special_tokens=[t.content for t in added if t.special],
        add_bos_token=bos is not None,
        add_prefix_space=False,
        errors="replace",
        split_special_tokens=False,
    )
    special_map = {k: v for k, v in names.items() if v is not None}
    special_map["additional_special_tokens"] = config["additional_special_tokens"]
    return {
        "tokenizer.json": _json(tokenizer_json),
        "tokenizer_config.json": _json(config),
        "special_tokens_map.json": _json(special_map),
    }


def _bos_processor(bos: str, bos_id: int) -> dict[str, Any]:
    """A ``tokenizers`` post-processor that puts ``bos`` in front of each sequence."""
    return {
        "type": "TemplateProcessing",
        "single": [
            {"SpecialToken": {"id": bos, "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
        ],
        "pair": [
            {"SpecialToken": {"id": bos, "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
            {"SpecialToken": {"id": bos, "type_id": 1}},
            {"Sequence": {"id": "B", "type_id": 1}},
        ],
        "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}},
    }


def _tokenizer_config(
    tokenizer_class: str,
    template: str,
    names: dict[str, str],
    specials: list[tuple[int, str]],
    plain_ids: Collection[int] = (),
) -> dict[str, Any]:
    """``tokenizer_config.json``; ``plain_ids`` are added tokens that are not special."""
    return {
        "tokenizer_class": tokenizer_class,
        **names,
        "chat_template": template,
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
        "added_tokens_decoder": {
            str(token_id): {
                k: v
                for k, v in _added_token(token_id, text, token_id not in plain_ids).items()
                if k != "id"
            }
            for token_id, text in specials
        },
    }


def _added_token(token_id: int, text: str, special: bool = True) -> dict[str, Any]:
    return {
        "id": token_id,
        "content": text,
        "single_word": False,
        "lstrip": False,
        "rstrip": False,
        "normalized": False,
        "special": special,
    }


def _json(data: Any) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()
