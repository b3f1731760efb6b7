"""Find the weight files of a checkpoint directory and its JSON side files.

Discovery follows what the Hugging Face and Meta downloads contain: an index file names
the shards when there is one; otherwise every weight file present is a shard.
"""

import json
import string
from collections.abc import Mapping, Sequence
from pathlib import Path

from modeling.storage import exists, parse
from modeling.storage.paths import StoragePath, as_path

HF_INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
# Files with weights-like suffixes that are not model weights.
NON_MODEL_FILES = {"adapter_model.safetensors", "adapter_model.bin", "training_args.bin"}
# torchtune's FormattedCheckpointFiles: ``checkpoint_files`` as a pattern and the last number.
FORMATTED_FILES_KEYS = ("filename_format", "max_filename")

CheckpointFiles = Sequence[str] | Mapping[str, str] | None


def checkpoint_directory(checkpoint_dir: str | Path) -> Path | StoragePath:
    """``checkpoint_dir`` as a Path (or a StoragePath for a URI), checked to exist.

    Raises:
        FileNotFoundError: Naming the directory when it does not exist.
        StorageError: Naming the URI when its store cannot be reached or refuses access.
    """
    parse(str(checkpoint_dir))  # names an unsupported scheme (http://) rather than mangle it
    directory = as_path(checkpoint_dir)
    if isinstance(directory, StoragePath) and not directory.is_dir():
        root = parse(str(directory)).root
        if not exists(root):
            raise FileNotFoundError(
                f"Checkpoint directory {str(directory)!r}: {root} does not exist (or is not "
                f"visible with these credentials); create it and upload the model, or fix "
                f"checkpoint_dir"
            )
        raise FileNotFoundError(
            f"Checkpoint directory {str(directory)!r} holds no objects; upload the model "
            f"there (config.json and the weights) or fix checkpoint_dir"
        )
    if directory.is_file():
        raise FileNotFoundError(
            f"Checkpoint directory {str(directory)!r} is a file; name the directory that "
            f"holds the model's config.json and weights"
        )
    if not directory.is_dir():
        raise FileNotFoundError(
            f"Checkpoint directory {str(directory)!r} does not exist; download the model "
            f"there (tune download ...) or fix checkpoint_dir"
        )
    return directory


def checkpoint_file_names(checkpoint_files: CheckpointFiles) -> list[str] | None:
    """The file names ``checkpoint_files`` stands for; None when omitted (discover them).

    A list (or omegaconf ``ListConfig``) names the files. A mapping (or ``DictConfig``) is
    torchtune's ``FormattedCheckpointFiles``, which its 70B and larger configs use::

        checkpoint_files:
          filename_format: model-{}-of-{}.safetensors
          max_filename: "00030"

    expands to ``model-00001-of-00030.safetensors`` .. ``model-00030-of-00030.safetensors``:
    numbers 1..int(max_filename), zero-padded to the width of ``max_filename``.

    Raises:
        ValueError: Naming the key of a malformed mapping: a missing or unknown key, a
            ``max_filename`` that is not a string of digits, or a ``filename_format``
            without exactly two ``{}`` placeholders.
    """
    if not checkpoint_files:
        return None
    if isinstance(checkpoint_files, str):
        return [checkpoint_files]
    if not isinstance(checkpoint_files, Mapping):
        return [str(name) for name in checkpoint_files]
    keys = set(checkpoint_files)
    missing = [key for key in FORMATTED_FILES_KEYS if key not in keys]
    unknown = sorted(str(key) for key in keys - set(FORMATTED_FILES_KEYS))
    if missing or unknown:
        problem = f"lacks {missing}" if missing else f"has unknown key(s) {unknown}"
        raise ValueError(
            f"checkpoint_files {dict(checkpoint_files)} {problem}; as a mapping it takes "
            f"exactly filename_format (e.g. 'model-{{}}-of-{{}}.safetensors') and max_filename "
            f"(e.g. '00030'), or give a list of file names"
        )
    pattern, last = checkpoint_files["filename_format"], checkpoint_files["max_filename"]
    if not isinstance(last, str) or not (last.isascii() and last.isdigit()) or int(last) < 1:
        raise ValueError(
            f"checkpoint_files.max_filename is {last!r}; it must be the last file's number "
            f'as a string of digits, e.g. "00030" (quote it in YAML: an unquoted 00030 '
            f"reads as a number and loses its zero padding)"
        )
    _check_filename_format(pattern)
    width = len(last)
    return [pattern.format(str(i).zfill(width), last) for i in range(1, int(last) + 1)]


def _check_filename_format(pattern: object) -> None:
    """Raise unless ``pattern`` takes two positional fields (``{}``), as torchtune's does."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None]
        if len(fields) == 2:
            pattern.format("1", "1")  # named ({i}) or out-of-range ({2}) fields fail here
            return
    except (AttributeError, TypeError, ValueError, IndexError, KeyError):
        pass  # not a string, unbalanced braces, named fields
    raise ValueError(
        f"checkpoint_files.filename_format is {pattern!r}; it must have exactly two {{}} "
        f"placeholders, the file's number and the last number, e.g. "
        f"'model-{{}}-of-{{}}.safetensors'"
    )


def resolve_hf_files(directory: Path, checkpoint_files: CheckpointFiles = None) -> list[Path]:
    """The Hugging Face weight files to read, given or discovered.

    ``checkpoint_files`` is a list of names, torchtune's ``filename_format`` /
    ``max_filename`` mapping (see :func:`checkpoint_file_names`), or None. Discovery
    order: ``model.safetensors.index.json``, ``pytorch_model.bin.index.json``, then every
    ``*.safetensors``, then every ``*.bin`` (adapters and training args excluded).

    Raises:
        FileNotFoundError: Naming the missing file(s) and listing what the directory holds.
        ValueError: For a malformed ``checkpoint_files`` mapping, naming its key.
    """
    names = checkpoint_file_names(checkpoint_files)
    if names:
        return _existing(directory, names)
    for index_name in HF_INDEX_FILES:
        if (directory / index_name).is_file():
            weight_map = read_json(directory / index_name).get("weight_map")
            if not isinstance(weight_map, dict) or not weight_map:
                raise ValueError(f"{directory / index_name} has no 'weight_map'; is it complete?")
            return _existing(directory, sorted(set(weight_map.values())))
    for suffix in ("*.safetensors", "*.bin"):
        found = sorted(p for p in directory.glob(suffix) if p.name not in NON_MODEL_FILES)
        if found:
            return found
    raise FileNotFoundError(
        f"No Hugging Face weights in {str(directory)!r} (looked for {', '.join(HF_INDEX_FILES)}, "
        f"*.safetensors, *.bin); it holds {_listing(directory)}. Pass checkpoint_files or "
        f"point checkpoint_dir at the model's directory"
    )


def resolve_meta_files(directory: Path, checkpoint_files: CheckpointFiles = None) -> list[Path]:
    """The Meta ``consolidated.NN.pth`` files to read, given or discovered, in rank order.

    ``checkpoint_files`` is as for :func:`resolve_hf_files`.

    Raises:
        FileNotFoundError: Naming the missing file(s) and listing what the directory holds.
        ValueError: For a malformed ``checkpoint_files`` mapping, naming its key.
    """
    names = checkpoint_file_names(checkpoint_files)
    if names:
        return _existing(directory, names)
    found = sorted(directory.glob("consolidated.*.pth"))
    if not found:
        raise FileNotFoundError(
            f"No consolidated.NN.pth in {str(directory)!r}; it holds {_listing(directory)}. "
            f"Meta checkpoints usually live in the download's original/ folder"
        )
    return found


def required_file(directory: Path, name: str) -> Path:
    """``directory / name``, which must exist (config.json, params.json).

    Raises:
        FileNotFoundError: Naming the file and listing what the directory holds.
    """
    path = directory / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{name} is missing from {str(directory)!r} (it holds {_listing(directory)}); "
            f"copy it from the original model download"
        )
    return path


def read_json(path: Path) -> dict:
    """Parse a JSON file, naming it when it is not valid JSON."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); is it truncated?") from err


def _existing(directory: Path, names: list[str]) -> list[Path]:
    paths = [directory / name for name in names]
    missing = [path.name for path in paths if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"Checkpoint file(s) {missing} not found in {str(directory)!r}; it holds "
            f"{_listing(directory)}. Fix checkpoint_files or omit it to discover the files"
        )
    return paths


def _listing(directory: Path) -> str:
    names = sorted(p.name for p in directory.iterdir())
    return str(names) if names else "nothing"
