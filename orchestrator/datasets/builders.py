"""Dataset builders with torchtune's names and keywords, as configs reference them.

Each builder loads one split of ``source`` (see ``sources.load_rows``), checks the columns it
needs, applies ``filter_fn`` to the raw rows, and returns a map-style dataset of
``{"tokens": list[int], "labels": list[int]}`` (labels -100 where no loss), or, with
``packed=True``, a :class:`PackedDataset` of fixed-length packs. ``max_seq_len`` (default:
the tokenizer's) truncates samples and is the pack length.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch.utils.data import Dataset

from orchestrator.datasets.messages import (
    AlpacaToMessages,
    InputOutputToMessages,
    conversation_transform,
)
from orchestrator.datasets.packing import PackedDataset
from orchestrator.datasets.sft import SFTDataset, TextCompletionDataset, effective_max_seq_len
from orchestrator.datasets.sources import load_rows

FilterFn = Callable[[Mapping[str, Any]], bool]


def _load(
    source: str,
    split: str,
    filter_fn: FilterFn | None,
    required: Sequence[str],
    hint: str,
    load_dataset_kwargs: dict[str, Any],
) -> list[dict[str, Any]]:
    """Load, check columns, filter; every failure names the data and the fix."""
    rows = load_rows(source, split=split, **load_dataset_kwargs)
    where = f"Dataset {source!r} (split {split!r})"
    if not rows:
        raise ValueError(f"{where} has no rows; check source, data_files and split")
    for index, row in enumerate(rows):
        missing = [column for column in required if column not in row]
        if missing:
            raise ValueError(
                f"{where}: row {index} has no column {missing[0]!r}; columns present: "
                f"{sorted(row)}. {hint}"
            )
    if filter_fn is not None:
        total = len(rows)
        rows = [row for row in rows if filter_fn(row)]
        if not rows:
            raise ValueError(f"{where}: filter_fn removed all {total} rows; nothing to train on")
    return rows


def _finish(
    ds: Dataset,
    tokenizer: Any,
    *,
    packed: bool,
    max_seq_len: int | None,
    split_across_pack: bool,
) -> Dataset:
    if not packed:
        return ds
    pack_len = effective_max_seq_len(tokenizer, max_seq_len)
    if pack_len is None:
        raise ValueError(
            "packed=True needs a pack length: pass max_seq_len=... or build the tokenizer with "
            "max_seq_len (e.g. llama3_tokenizer(path, max_seq_len=2048))"
        )
    pad_id = getattr(tokenizer, "pad_id", None)
    return PackedDataset(
        ds,
        max_seq_len=pack_len,
        padding_idx=0 if pad_id is None else pad_id,
        split_across_pack=split_across_pack,
    )


def instruct_dataset(
    tokenizer: Any,
    *,
    source: str,
    column_map: Mapping[str, str] | None = None,
    train_on_input: bool = False,
    new_system_prompt: str | None = None,
    filter_fn: FilterFn | None = None,
    split: str = "train",
    packed: bool = False,
    max_seq_len: int | None = None,
    **load_dataset_kwargs: Any,
) -> Dataset:
    """Prompt/response pairs: column ``input`` is the user turn, ``output`` the reply.

    Args:
        tokenizer: A ``modeling`` tokenizer (``tokenize_messages``).
        source: Local file or folder, format name with ``data_files``, or Hub dataset id.
        column_map: Maps ``input``/``output`` to your columns, e.g.
            ``{"input": "prompt", "output": "response"}``.
        train_on_input: Whether the prompt takes loss too.
        new_system_prompt: Optional system turn put before every sample.
        filter_fn: Keep the raw rows for which this returns True.
        split: Split to load, optionally sliced (``train[:1000]``).
        packed: Pack samples into ``max_seq_len``-token sequences.
        max_seq_len: Truncation and pack length (default: the tokenizer's).
        **load_dataset_kwargs: ``data_files``, ``data_dir``, ``name``, ``revision``, ...
    """
    transform = InputOutputToMessages(train_on_input, column_map, new_system_prompt)
    rows = _load(
        source,
        split,
        filter_fn,
        transform.required_columns,
        "Map your columns with column_map={'input': <prompt column>, 'output': <response column>}.",
        load_dataset_kwargs,
    )
    ds = SFTDataset(rows, transform, tokenizer, max_seq_len=max_seq_len, source=source)
    return _finish(ds, tokenizer, packed=packed, max_seq_len=max_seq_len, split_across_pack=False)


def alpaca_dataset(
    tokenizer: Any,
    *,
    source: str = "tatsu-lab/alpaca",
    column_map: Mapping[str, str] | None = None,
    train_on_input: bool = True,
    filter_fn: FilterFn | None = None,
    split: str = "train",
    packed: bool = False,
    max_seq_len: int | None = None,
    **load_dataset_kwargs: Any,
) -> Dataset:
    """Alpaca-style instructions (``instruction``, ``input``, ``output``) in Alpaca's template.

    Arguments as :func:`instruct_dataset`; ``column_map`` keys are ``instruction``, ``input``,
    ``output``. ``train_on_input`` defaults to True, as in torchtune's ``alpaca_dataset``.
    """
    transform = AlpacaToMessages(train_on_input, column_map)
    rows = _load(
        source,
        split,
        filter_fn,
        transform.required_columns,
        "Alpaca data needs 'instruction' and 'output' (and optionally 'input'); map other "
        "names with column_map={'instruction': ..., 'input': ..., 'output': ...}.",
        load_dataset_kwargs,
    )
    ds = SFTDataset(rows, transform, tokenizer, max_seq_len=max_seq_len, source=source)
    return _finish(ds, tokenizer, packed=packed, max_seq_len=max_seq_len, split_across_pack=False)


def alpaca_cleaned_dataset(
    tokenizer: Any,
    *,
    source: str = "yahma/alpaca-cleaned",
    column_map: Mapping[str, str] | None = None,
    train_on_input: bool = True,
    filter_fn: FilterFn | None = None,
    split: str = "train",
    packed: bool = False,
    max_seq_len: int | None = None,
    **load_dataset_kwargs: Any,
) -> Dataset:
    """:func:`alpaca_dataset` on the cleaned Alpaca data (``yahma/alpaca-cleaned``).

    The keywords are spelled out (not forwarded as ``**kwargs``) so that ``tune validate``
    checks them.
    """
    return alpaca_dataset(
        tokenizer,
        source=source,
        column_map=column_map,
        train_on_input=train_on_input,
        filter_fn=filter_fn,
        split=split,
        packed=packed,
        max_seq_len=max_seq_len,
        **load_dataset_kwargs,
    )


def chat_dataset(
    tokenizer: Any,
    *,
    source: str,
    conversation_column: str,
    conversation_style: str,
    train_on_input: bool = False,
    new_system_prompt: str | None = None,
    filter_fn: FilterFn | None = None,
    split: str = "train",
    packed: bool = False,
    max_seq_len: int | None = None,
    **load_dataset_kwargs: Any,
) -> Dataset:
    """Multi-turn conversations, each a list of turns in one column.

    Args:
        tokenizer: A ``modeling`` tokenizer (``tokenize_messages``).
        source: Local file or folder, format name with ``data_files``, or Hub dataset id.
        conversation_column: The column holding each conversation.
        conversation_style: ``sharegpt`` (turns ``{"from": human|gpt|system, "value": ...}``)
            or ``openai`` (turns ``{"role": ..., "content": ...}``).
        train_on_input: Whether non-assistant turns take loss too.
        new_system_prompt: Replaces the conversations' system turns.
        filter_fn: Keep the raw rows for which this returns True.
        split: Split to load, optionally sliced.
        packed: Pack samples into ``max_seq_len``-token sequences.
        max_seq_len: Truncation and pack length (default: the tokenizer's).
        **load_dataset_kwargs: ``data_files``, ``data_dir``, ``name``, ``revision``, ...
    """
    transform = conversation_transform(
        conversation_style,
        conversation_column,
        train_on_input=train_on_input,
        new_system_prompt=new_system_prompt,
    )
    rows = _load(
        source,
        split,
        filter_fn,
        transform.required_columns,
        "Set conversation_column to the column that holds the conversations.",
        load_dataset_kwargs,
    )
    ds = SFTDataset(rows, transform, tokenizer, max_seq_len=max_seq_len, source=source)
    return _finish(ds, tokenizer, packed=packed, max_seq_len=max_seq_len, split_across_pack=False)


def text_completion_dataset(
    tokenizer: Any,
    *,
    source: str,
    column: str = "text",
    add_eos: bool = True,
    packed: bool = False,
    split_across_pack: bool = True,
    split: str = "train",
    filter_fn: FilterFn | None = None,
    max_seq_len: int | None = None,
    **load_dataset_kwargs: Any,
) -> Dataset:
    """Raw text for continued pre-training: every token takes loss.

    A ``.txt`` source gives one sample per non-empty line; pass ``sample_by="paragraph"`` or
    ``sample_by="document"`` to split on blank lines or keep each file whole.

    Args:
        tokenizer: A ``modeling`` tokenizer (``encode``).
        source: Local file or folder, format name with ``data_files``, or Hub dataset id.
        column: The column holding the text.
        add_eos: End each sample with EOS.
        packed: Pack samples into ``max_seq_len``-token sequences.
        split_across_pack: Let a document continue into the next pack (torchtune's default
            for text), so packs carry no padding until the end; documents are then not
            truncated but run on through as many packs as they fill.
        split: Split to load, optionally sliced.
        filter_fn: Keep the raw rows for which this returns True.
        max_seq_len: Truncation and pack length (default: the tokenizer's).
        **load_dataset_kwargs: ``data_files``, ``data_dir``, ``sample_by``, ``revision``, ...
    """
    rows = _load(
        source,
        split,
        filter_fn,
        [column],
        "Set column= to the column that holds the text.",
        load_dataset_kwargs,
    )
    # Documents that may run on into the next pack need no truncation.
    truncate = not (packed and split_across_pack)
    ds = TextCompletionDataset(
        rows,
        tokenizer,
        column=column,
        add_eos=add_eos,
        max_seq_len=max_seq_len,
        truncate=truncate,
        source=source,
    )
    return _finish(
        ds,
        tokenizer,
        packed=packed,
        max_seq_len=max_seq_len,
        split_across_pack=split_across_pack,
    )
