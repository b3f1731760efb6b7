"""Llama 3 tokenizer throughput: ours next to Hugging Face `tokenizers`, same ranks, same text.

The rank file is trained here, offline: a byte-level BPE (`tokenizers`' BpeTrainer with
Llama 3's pre-tokenisation regex) learns ``--merges`` merges on half of the Python standard
library's source files, and its vocabulary, in merge order, is written as a tiktoken rank
file (``base64(token bytes) rank`` per line), the format of Meta's ``tokenizer.model``.
Ours reads that file with ``llama3_tokenizer``; the Hugging Face side is built from the
same file by transformers' ``TikTokenConverter``, the conversion Hugging Face uses for
Llama 3's ``tokenizer.json``. Both encode the other half of the standard library, one
long string and then file by file, single-threaded, timed alternately (median of
``--repeats``); the ids are checked identical before anything is timed.

    python -m bench.tokenizer_throughput [--merges 16384 --train-mb 8 --bench-mb 4 --repeats 5]
"""

import argparse
import base64
import os
import statistics
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import tiktoken
from tiktoken.load import load_tiktoken_bpe
from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
from transformers.convert_slow_tokenizer import TikTokenConverter, bytes_to_unicode

from modeling.llama3 import llama3_tokenizer
from modeling.llama3._tokenizer import LLAMA3_PATTERN
from modeling.tokenizers.tiktoken_bpe import MAX_ENCODE_CHARS


def stdlib_sources(limit_bytes: int, parity: int) -> list[str]:
    """Every other standard-library .py file (by sorted path), up to ``limit_bytes``."""
    files = sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py"))
    texts, total = [], 0
    for path in files[parity::2]:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        texts.append(text)
        total += len(text.encode())
        if total >= limit_bytes:
            break
    return texts


def train_rank_file(texts: list[str], merges: int, path: Path) -> None:
    """Train a byte-level BPE and write its vocabulary as a tiktoken rank file."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=256 + merges,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    to_byte = {char: byte for byte, char in bytes_to_unicode().items()}
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    # Ids are the 256 byte symbols then the merges in the order they were learnt, which is
    # the order of tiktoken ranks.
    lines = [
        f"{base64.b64encode(bytes(to_byte[c] for c in token)).decode()} {rank}"
        for rank, (token, _) in enumerate(vocab)
    ]
    path.write_text("\n".join(lines) + "\n")


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--merges", type=int, default=16_384)
    parser.add_argument("--train-mb", type=float, default=8.0)
    parser.add_argument("--bench-mb", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rank-file", type=Path, help="reuse (or write) this rank file")
    args = parser.parse_args()

    rank_file = args.rank_file or Path(tempfile.mkdtemp()) / "tokenizer.model"
    if not rank_file.exists():
        start = time.perf_counter()
        train_rank_file(stdlib_sources(int(args.train_mb * 2**20), 0), args.merges, rank_file)
        print(f"trained {args.merges} merges in {time.perf_counter() - start:.1f}s: {rank_file}")

    ours = llama3_tokenizer(rank_file)
    theirs = TikTokenConverter(vocab_file=str(rank_file), pattern=LLAMA3_PATTERN).converted()
    # Bare tiktoken on the same ranks, to show what our chunking and run splitting cost.
    bare = tiktoken.Encoding(
        "bare",
        pat_str=LLAMA3_PATTERN,
        mergeable_ranks=load_tiktoken_bpe(str(rank_file)),
        special_tokens={},
    )
    documents = stdlib_sources(int(args.bench_mb * 2**20), 1)
    text = "".join(documents)

    def ours_long() -> list[int]:
        return ours.encode(text, add_bos=False, add_eos=False)

    def theirs_long() -> list[int]:
        return theirs.encode(text, add_special_tokens=False).ids

    def bare_long() -> list[int]:
        return bare.encode_ordinary(text)

    def bare_docs() -> None:
        for document in documents:
            bare.encode_ordinary(document)

    def ours_docs() -> None:
        for document in documents:
            ours.encode(document, add_bos=False, add_eos=False)

    def theirs_docs() -> None:
        for document in documents:
            theirs.encode(document, add_special_tokens=False)

    # Like Meta's reference, ours encodes long text in 400k-character chunks, so the long
    # string matches the Hugging Face ids of those chunks, and every file matches outright.
    ids = ours_long()
    chunked = [
        token
        for start in range(0, len(text), MAX_ENCODE_CHARS)
        for token in theirs.encode(text[start : start + MAX_ENCODE_CHARS]).ids
    ]
    same_docs = all(
        ours.encode(d, add_bos=False, add_eos=False) == theirs.encode(d).ids for d in documents
    )
    if ids != chunked or not same_docs:
        raise SystemExit("the two tokenizers disagree on the benchmark text; nothing timed")
    print(
        f"vocab {ours.vocab_size} ({ours.num_base} ranks), text {len(text.encode()) / 2**20:.1f} "
        f"MiB in {len(documents)} files, {len(ids)} tokens, identical ids"
    )
    print(f"{'case':<18}{'ours tok/s':>13}{'HF tok/s':>13}{'ours/HF':>9}{'bare tiktoken':>15}")
    for case, runs in [
        ("one long string", (ours_long, theirs_long, bare_long)),
        ("file by file", (ours_docs, theirs_docs, bare_docs)),
    ]:
        times: list[list[float]] = [[], [], []]
        for _ in range(args.repeats):  # alternate so machine noise hits all alike
            for run, run_times in zip(runs, times, strict=True):
                run_times.append(timed(run))
        ours_time, theirs_time, bare_time = (statistics.median(t) for t in times)
        print(
            f"{case:<18}{len(ids) / ours_time:>13,.0f}{len(ids) / theirs_time:>13,.0f}"
            f"{theirs_time / ours_time:>9.2f}{len(ids) / bare_time:>15,.0f}"
        )


if __name__ == "__main__":
    main()
