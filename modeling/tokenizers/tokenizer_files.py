"""Reading a tokenizer file and telling the kinds of tokenizer file apart.

Meta ships Llama 2's sentencepiece model and Llama 3's tiktoken BPE ranks under the same
name, ``tokenizer.model``, so passing one family's file to another family's builder is an
easy mistake. Each reader names the kind it found and the builder that reads it.
"""

import re
from pathlib import Path

import sentencepiece

from modeling.storage import cached_local_copy, is_remote

TIKTOKEN_RANKS = "a tiktoken BPE rank file"
SENTENCEPIECE = "a sentencepiece model"
HF_TOKENIZER_JSON = "a Hugging Face tokenizer.json"

# One line of a tiktoken rank file: the token's bytes in base64, a space, its rank.
RANK_LINE = re.compile(rb"[A-Za-z0-9+/]+={0,2} [0-9]+")
# Real tokenizer files are a few MB (Gemma's sentencepiece model, the largest, is 4 MB); a
# bigger file is a checkpoint or dataset passed by mistake and is not read into memory.
MAX_TOKENIZER_FILE_BYTES = 256 * 2**20


def read_tokenizer_file(path: str | Path, builder: str) -> bytes:
    """Return the bytes of the tokenizer file at ``path`` (a local path or a URI).

    A URI is fetched once per node into its cache (:func:`modeling.storage.cached_local_copy`).

    Raises:
        FileNotFoundError: ``path`` does not exist or is a directory.
        ValueError: the file is empty (an interrupted download, typically) or far too big
            to be a tokenizer.
    """
    if is_remote(path):
        path = cached_local_copy(path)
    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(
            f"{builder}: {str(path)!r} is a directory; pass the path of the tokenizer file "
            f"inside it (tokenizer.model)"
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"{builder}: tokenizer file {str(path)!r} does not exist; pass the path of the "
            f"model's tokenizer.model (download the model first, e.g. with `tune download`)"
        )
    size = path.stat().st_size
    if size > MAX_TOKENIZER_FILE_BYTES:
        raise ValueError(
            f"{builder}: {str(path)!r} is {size / 2**30:.1f} GiB, too big for a tokenizer file "
            f"(a few MB); it looks like a checkpoint or data file. Pass tokenizer.model."
        )
    data = path.read_bytes()
    if not data:
        raise ValueError(f"{builder}: tokenizer file {str(path)!r} is empty; download it again")
    return data


def tokenizer_file_kind(data: bytes) -> str | None:
    """Guess what kind of tokenizer file ``data`` holds; None when it is none we know."""
    first_line = data.split(b"\n", 1)[0].rstrip(b"\r")
    if RANK_LINE.fullmatch(first_line):
        return TIKTOKEN_RANKS
    if data.lstrip()[:1] == b"{":
        return HF_TOKENIZER_JSON
    processor = sentencepiece.SentencePieceProcessor()
    try:
        processor.LoadFromSerializedProto(data)
    except RuntimeError:
        return None
    return SENTENCEPIECE
