"""Find the weight files of a checkpoint directory and its JSON side files.

Discovery follows what the Hugging Face and Meta downloads contain: an index file names
the shards when there is one; otherwise every weight file present is a shard.
"""

import json
from pathlib import Path

from modeling.storage import exists, parse
from modeling.storage.paths import StoragePath, as_path

HF_INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
# Files with weights-like suffixes that are not model weights.
NON_MODEL_FILES = {"adapter_model.safetensors", "adapter_model.bin", "training_args.bin"}


def checkpoint_directory(checkpoint_dir: str | Path) -> Path | StoragePath:
    """``checkpoint_dir`` as a Path (or a StoragePath for a URI), checked to exist.

    Raises:
        FileNotFoundError: Naming the directory when it does not exist.
        StorageError: Naming the URI when its store cannot be reached or refuses access.
    """
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
    if not directory.is_dir():
        raise FileNotFoundError(
            f"Checkpoint directory {str(directory)!r} does not exist; download the model "
            f"there (tune download ...) or fix checkpoint_dir"
        )
    return directory


def resolve_hf_files(directory: Path, checkpoint_files: list[str] | None = None) -> list[Path]:
    """The Hugging Face weight files to read, given or discovered.

    Discovery order: ``model.safetensors.index.json``, ``pytorch_model.bin.index.json``,
    then every ``*.safetensors``, then every ``*.bin`` (adapters and training args excluded).

    Raises:
        FileNotFoundError: Naming the missing file(s) and listing what the directory holds.
    """
    if checkpoint_files:
        return _existing(directory, checkpoint_files)
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


def resolve_meta_files(directory: Path, checkpoint_files: list[str] | None = None) -> list[Path]:
    """The Meta ``consolidated.NN.pth`` files to read, given or discovered, in rank order.

    Raises:
        FileNotFoundError: Naming the missing file(s) and listing what the directory holds.
    """
    if checkpoint_files:
        return _existing(directory, checkpoint_files)
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
