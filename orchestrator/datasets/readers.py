"""Readers that turn one local data file into rows (``dict`` of column -> value).

Formats follow the Hugging Face ``datasets`` builders of the same names, without depending
on that library:

- ``json``: a JSON list of objects, a single object of equal-length column lists, an object
  holding the rows under ``field``, or JSON lines (one object a line; ``.jsonl`` always).
- ``csv``: a header row, then one row a line; every value is a string.
- ``parquet``: read with pyarrow.
- ``text``: column ``text``. ``sample_by="line"`` (the default) makes one sample of each
  non-empty line, as ``datasets``' text builder does, except that blank lines are skipped
  rather than kept as empty samples (they would tokenize to nothing);
  ``sample_by="paragraph"`` splits on blank lines, ``sample_by="document"`` makes the whole
  file one sample.
"""

import csv
import json
import re
from pathlib import Path
from typing import Any

Row = dict[str, Any]

FORMAT_BY_SUFFIX = {
    ".json": "json",
    ".jsonl": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".txt": "text",
}
FORMATS = ("json", "csv", "parquet", "text")
SAMPLE_BY = ("line", "paragraph", "document")


def format_of(path: Path) -> str:
    """The reader format for a file, from its suffix.

    Raises:
        ValueError: The suffix is not one this module reads.
    """
    fmt = FORMAT_BY_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"Unsupported dataset file extension {path.suffix!r} for {path}; supported: "
            f"{', '.join(FORMAT_BY_SUFFIX)}. Convert the file, or pass source='json'/'csv'/"
            "'parquet'/'text' with data_files=... to read it as that format."
        )
    return fmt


def read_file(
    path: Path, fmt: str, *, field: str | None = None, sample_by: str = "line"
) -> list[Row]:
    """Read every row of ``path`` as format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "json":
        return read_json(path, field=field)
    if fmt == "csv":
        return read_csv(path)
    if fmt == "parquet":
        return read_parquet(path)
    if fmt == "text":
        return read_text(path, sample_by=sample_by)
    raise ValueError(f"Unknown dataset format {fmt!r}; supported: {', '.join(FORMATS)}")


def read_json(path: Path, *, field: str | None = None) -> list[Row]:
    """Read a JSON document or JSON lines; errors name the file and line."""
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if not stripped:
        return []
    if path.suffix.lower() == ".jsonl" and field is None:
        return _json_lines(path, text)
    if stripped[0] == "[" or field is not None:
        return _json_document(path, _load_document(path, text), field)
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return _json_lines(path, text)  # several objects: JSON lines
    return _json_document(path, document, field)


def _load_document(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path}: malformed JSON at line {err.lineno}, column {err.colno}: {err.msg}"
        ) from None


def _json_document(path: Path, document: Any, field: str | None) -> list[Row]:
    if field is not None:
        if not isinstance(document, dict) or field not in document:
            keys = sorted(document) if isinstance(document, dict) else type(document).__name__
            raise ValueError(f"{path}: field={field!r} not found; top-level keys: {keys}")
        document = document[field]
    if isinstance(document, dict):
        lengths = {len(v) if isinstance(v, list) else -1 for v in document.values()}
        if len(lengths) == 1 and -1 not in lengths:  # columns: {"a": [...], "b": [...]}
            columns = list(document)
            return [
                dict(zip(columns, values, strict=True))
                for values in zip(*document.values(), strict=True)
            ]
        return [document]
    if not isinstance(document, list):
        raise ValueError(
            f"{path}: expected a JSON list of objects (or JSON lines), got a "
            f"{type(document).__name__}"
        )
    for i, row in enumerate(document):
        if not isinstance(row, dict):
            raise ValueError(
                f"{path}: item {i} is a {type(row).__name__}; every item must be a JSON object "
                "mapping column names to values"
            )
    return document


def _json_lines(path: Path, text: str) -> list[Row]:
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{path}, line {lineno}: malformed JSON ({err.msg} at column {err.colno}); each "
                "line of a JSON lines file must hold one complete JSON object"
            ) from None
        if not isinstance(row, dict):
            raise ValueError(
                f"{path}, line {lineno}: expected a JSON object, got a {type(row).__name__}"
            )
        rows.append(row)
    return rows


def read_csv(path: Path) -> list[Row]:
    """Read a CSV file with a header row; values stay strings."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = []
        for row in reader:
            if None in row:
                raise ValueError(
                    f"{path}, line {reader.line_num}: more values than the header's "
                    f"{len(reader.fieldnames or [])} columns; quote values that contain commas"
                )
            rows.append(row)
    return rows


def read_parquet(path: Path) -> list[Row]:
    """Read a Parquet file with pyarrow."""
    import pyarrow.parquet as pq  # imported here: only Parquet sources need it

    return pq.read_table(path).to_pylist()


def read_text(path: Path, *, sample_by: str = "line") -> list[Row]:
    """Read a text file into ``{"text": ...}`` rows; see the module docstring for ``sample_by``."""
    text = path.read_text(encoding="utf-8")
    if sample_by == "line":
        pieces = text.splitlines()
    elif sample_by == "paragraph":
        pieces = re.split(r"\n\s*\n", text.strip())
    elif sample_by == "document":
        pieces = [text]
    else:
        raise ValueError(f"sample_by={sample_by!r} is not one of {', '.join(SAMPLE_BY)}")
    return [{"text": piece} for piece in pieces if piece.strip()]
