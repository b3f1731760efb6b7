"""Resolving a dataset ``source`` (and ``load_dataset``-style keywords) to rows of one split.

``source`` means what it means to ``datasets.load_dataset``, which torchtune configs pass it
to, without depending on that library:

- a local file (``.json``, ``.jsonl``, ``.csv``, ``.parquet``, ``.txt``) or a folder of them;
- a format name (``json``, ``csv``, ``parquet``, ``text``) with ``data_files`` (a path, glob,
  list, or ``{split: paths}``) and/or ``data_dir``;
- otherwise a dataset repo id on the Hugging Face Hub, downloaded with
  ``huggingface_hub.snapshot_download`` (honours ``HF_ENDPOINT``, ``HF_TOKEN``, the cache).

Within a folder or repo, splits come from the ``configs`` section of ``README.md`` when it
has one, else from file and folder names as ``datasets`` infers them (``train``,
``validation``/``valid``/``dev``/``val``, ``test``/``eval``, e.g.
``data/train-00000-of-00001.parquet``); files named for no split make up ``train``. A
folder holding several formats is read in its most common one, as ``datasets`` does.
``split`` may slice, e.g. ``train[:100]`` or ``train[10%:]``.
"""

import re
from collections import Counter
from pathlib import Path
from typing import Any

from modeling.storage import cached_local_copy, cached_local_dir, is_remote, name
from modeling.storage import is_dir as storage_is_dir
from orchestrator.datasets import readers
from orchestrator.datasets.hub import download_dataset_repo
from orchestrator.datasets.readers import Row

# Keywords in file or folder names that place a file in a split (as ``datasets`` does).
SPLIT_KEYWORDS = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "dev", "val"),
    "test": ("test", "testing", "eval", "evaluation"),
}
# ``load_dataset`` keywords this loader understands; any other one is an error.
SUPPORTED_KWARGS = (
    "data_files",
    "data_dir",
    "name",
    "revision",
    "token",
    "cache_dir",
    "field",
    "sample_by",
)
# ``load_dataset`` keywords that change nothing here and are accepted for config compatibility.
IGNORED_KWARGS = ("trust_remote_code", "num_proc", "keep_in_memory", "verification_mode")
_FORMAT_PRIORITY = ("parquet", "json", "csv", "text")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_SPLIT = re.compile(r"^([\w.-]+)(?:\[\s*(-?\d+%?)?\s*:\s*(-?\d+%?)?\s*\])?$")


def load_rows(source: str, *, split: str = "train", **load_dataset_kwargs: Any) -> list[Row]:
    """Load the rows of one split of ``source`` (see the module docstring for what it can be).

    Args:
        source: Local path, format name or Hub dataset repo id.
        split: Split name, optionally sliced (``train[:1000]``, ``train[:10%]``).
        **load_dataset_kwargs: ``data_files``, ``data_dir``, ``name`` (README config),
            ``revision``, ``token``, ``cache_dir`` (Hub), ``field`` (JSON rows under a key),
            ``sample_by`` (text: ``line``, ``paragraph``, ``document``).

    Returns:
        The rows, each a dict of column -> value.

    Raises:
        FileNotFoundError: A file, folder, data_files pattern or Hub repo does not exist.
        ValueError: Unknown keyword, split, config or file format; malformed file contents.
    """
    unknown = sorted(set(load_dataset_kwargs) - set(SUPPORTED_KWARGS) - set(IGNORED_KWARGS))
    if unknown:
        raise ValueError(
            f"Unsupported dataset keyword(s) {unknown} for source {source!r}; supported: "
            f"{', '.join(SUPPORTED_KWARGS)}"
        )
    kwargs = {k: v for k, v in load_dataset_kwargs.items() if k in SUPPORTED_KWARGS}
    source, kwargs = _local_copies(source, kwargs)
    split_name, start, stop = _parse_split(split)
    files = _split_files(source, kwargs)
    if split_name not in files:
        raise ValueError(
            f"Split {split_name!r} not found in dataset {source!r}; available splits: "
            f"{', '.join(sorted(files)) or 'none'}"
        )
    rows: list[Row] = []
    for path, fmt in files[split_name]:
        rows.extend(
            readers.read_file(
                path,
                fmt,
                field=kwargs.get("field"),
                sample_by=kwargs.get("sample_by", "line"),
            )
        )
    return rows[_slice_bound(start, len(rows)) : _slice_bound(stop, len(rows))]


def _local_copies(source: str, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Fetch a URI ``source`` (a file or a folder) and URI ``data_files`` into the node cache.

    Data sets are read whole, so a node downloads each once (its ranks share the copy)
    and the readers below see local files.
    """
    if is_remote(source):
        is_file = bool(Path(name(source)).suffix) and not storage_is_dir(source)
        source = str(cached_local_copy(source) if is_file else cached_local_dir(source))
    files = kwargs.get("data_files")
    if isinstance(files, str):
        files = _local_file(files)
    elif isinstance(files, dict):
        files = {
            split: [_local_file(f) for f in ([v] if isinstance(v, str) else v)]
            for split, v in files.items()
        }
    elif files is not None:
        files = [_local_file(f) for f in files]
    return source, {**kwargs, "data_files": files} if files is not None else kwargs


def _local_file(path: str) -> str:
    return str(cached_local_copy(path)) if is_remote(path) else path


def _parse_split(split: str) -> tuple[str, str | None, str | None]:
    match = _SPLIT.match(split.strip())
    if match is None:
        raise ValueError(
            f"Cannot parse split {split!r}; use a name, optionally sliced: 'train', "
            "'train[:100]', 'train[10%:]'"
        )
    return match.group(1), match.group(2), match.group(3)


def _slice_bound(bound: str | None, total: int) -> int | None:
    if bound is None:
        return None
    if bound.endswith("%"):
        return round(total * int(bound[:-1]) / 100)
    return int(bound)


def _split_files(source: str, kwargs: dict[str, Any]) -> dict[str, list[tuple[Path, str]]]:
    """Map split name -> [(file, format)] for ``source``."""
    data_files, data_dir = kwargs.get("data_files"), kwargs.get("data_dir")
    if source in readers.FORMATS:
        if data_files is None and data_dir is None:
            raise ValueError(
                f"source={source!r} reads local files: pass data_files=<path or glob> (or "
                "data_dir=<folder>), e.g. data_files='data/my_data.json'"
            )
        base = Path(data_dir) if data_dir else Path.cwd()
        if data_files is None:
            return _infer_split_files(_existing_dir(base), fmt=source)
        return _explicit_split_files(base, data_files, fmt=source)
    path = Path(source).expanduser()
    if path.is_file():
        return {"train": [(path, readers.format_of(path))]}
    if path.is_dir():
        return _folder_split_files(path, kwargs)
    if _looks_like_path(source):
        raise FileNotFoundError(
            f"Dataset file or folder not found: {source} (resolved to {path.resolve()}). "
            "Check the path; relative paths are relative to the working directory."
        )
    snapshot = download_dataset_repo(
        source,
        revision=kwargs.get("revision"),
        token=kwargs.get("token"),
        cache_dir=kwargs.get("cache_dir"),
        allow_patterns=_allow_patterns(data_files, data_dir),
    )
    return _folder_split_files(snapshot, kwargs)


def _looks_like_path(source: str) -> bool:
    return (
        not _REPO_ID.match(source)
        or source.startswith((".", "~"))
        or Path(source).suffix.lower() in readers.FORMAT_BY_SUFFIX
    )


def _allow_patterns(data_files: Any, data_dir: str | None) -> list[str]:
    """What to download from a Hub repo: the README and the data files that may be used."""
    if data_files is not None:
        patterns = [p for paths in _normalize_data_files(data_files).values() for p in paths]
    else:
        patterns = [f"*{suffix}" for suffix in readers.FORMAT_BY_SUFFIX]
    if data_dir:
        patterns = [f"{data_dir.strip('/')}/{p}" for p in patterns]
    return ["README.md", *patterns]


def _existing_dir(path: Path) -> Path:
    if not path.is_dir():
        raise FileNotFoundError(f"Dataset folder not found: {path}; check data_dir")
    return path


def _folder_split_files(folder: Path, kwargs: dict[str, Any]) -> dict[str, list]:
    data_files, data_dir = kwargs.get("data_files"), kwargs.get("data_dir")
    base = _existing_dir(folder / data_dir) if data_dir else folder
    if data_files is not None:
        return _explicit_split_files(base, data_files, fmt=None)
    readme_configs = _readme_configs(folder / "README.md")
    if readme_configs:
        config = _choose_config(readme_configs, kwargs.get("name"), folder)
        if config.get("data_files") is not None:
            config_base = folder / config["data_dir"] if config.get("data_dir") else folder
            return _explicit_split_files(config_base, config["data_files"], fmt=None)
        if config.get("data_dir"):
            base = _existing_dir(folder / config["data_dir"])
    return _infer_split_files(base, fmt=None)


def _normalize_data_files(data_files: Any) -> dict[str, list[str]]:
    """``str | list | {split: str | list}`` (or README's ``[{split, path}]``) -> split: paths."""
    if isinstance(data_files, str | Path):
        return {"train": [str(data_files)]}
    if isinstance(data_files, dict):
        return {
            k: [str(v)] if isinstance(v, str | Path) else [str(p) for p in v]
            for k, v in data_files.items()
        }
    data_files = list(data_files)
    if data_files and all(isinstance(x, dict) for x in data_files):
        out: dict[str, list[str]] = {}
        for entry in data_files:
            paths = entry.get("path", [])
            out.setdefault(entry.get("split", "train"), []).extend(
                [paths] if isinstance(paths, str) else paths
            )
        return out
    return {"train": [str(p) for p in data_files]}


def _explicit_split_files(base: Path, data_files: Any, fmt: str | None) -> dict[str, list]:
    out = {}
    for split, patterns in _normalize_data_files(data_files).items():
        paths: list[Path] = []
        for pattern in patterns:
            matched = _glob(base, pattern)
            if not matched:
                raise FileNotFoundError(
                    f"Dataset file not found: {pattern!r} (split {split!r}) matched nothing "
                    f"under {base}; check data_files"
                )
            paths.extend(matched)
        out[split] = [(p, fmt or readers.format_of(p)) for p in paths]
    return out


def _glob(base: Path, pattern: str) -> list[Path]:
    path = Path(pattern).expanduser()
    if not path.is_absolute():
        path = base / path
    if not any(ch in pattern for ch in "*?["):
        return [path] if path.is_file() else []
    anchor = Path(path.anchor)
    return sorted(p for p in anchor.glob(str(path.relative_to(anchor))) if p.is_file())


def _infer_split_files(folder: Path, fmt: str | None) -> dict[str, list]:
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and (fmt is not None or p.suffix.lower() in readers.FORMAT_BY_SUFFIX)
    )
    if fmt is None:
        formats = Counter(readers.FORMAT_BY_SUFFIX[p.suffix.lower()] for p in files)
        if not formats:
            raise FileNotFoundError(
                f"No dataset files in {folder}: expected files ending in "
                f"{', '.join(readers.FORMAT_BY_SUFFIX)}"
            )
        top = max(formats.values())
        fmt = next(f for f in _FORMAT_PRIORITY if formats[f] == top)
        files = [p for p in files if readers.FORMAT_BY_SUFFIX[p.suffix.lower()] == fmt]
    elif not files:
        raise FileNotFoundError(f"No files in dataset folder {folder}")
    by_split: dict[str, list] = {}
    for path in files:
        split = _split_of(path.relative_to(folder))
        if split is not None:
            by_split.setdefault(split, []).append((path, fmt))
    return by_split or {"train": [(p, fmt) for p in files]}


def _split_of(relative: Path) -> str | None:
    words = set()
    for part in relative.with_suffix("").parts:
        words.update(w.lower() for w in re.split(r"[-._ 0-9]+", part) if w)
    for split, keywords in SPLIT_KEYWORDS.items():
        if words.intersection(keywords):
            return split
    return None


def _readme_configs(readme: Path) -> list[dict[str, Any]]:
    """The ``configs`` list of a dataset card's YAML header, or ``[]``."""
    if not readme.is_file():
        return []
    text = readme.read_text(encoding="utf-8")
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, flags=re.DOTALL)
    if not match:
        return []
    import yaml  # omegaconf's dependency; only dataset cards need it

    try:
        header = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{readme}: malformed YAML header: {err}") from None
    configs = header.get("configs") if isinstance(header, dict) else None
    return [c for c in configs if isinstance(c, dict)] if isinstance(configs, list) else []


def _choose_config(configs: list[dict[str, Any]], name: str | None, folder: Path) -> dict:
    names = [str(c.get("config_name", "default")) for c in configs]
    if name is not None:
        if name not in names:
            raise ValueError(
                f"Dataset config name={name!r} not found in {folder / 'README.md'}; "
                f"available: {', '.join(names)}"
            )
        return configs[names.index(name)]
    for config in configs:
        if config.get("default"):
            return config
    if "default" in names:
        return configs[names.index("default")]
    if len(configs) == 1:
        return configs[0]
    raise ValueError(
        f"Dataset at {folder} has several configs ({', '.join(names)}); pick one with name=..."
    )
