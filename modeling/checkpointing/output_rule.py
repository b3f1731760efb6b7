"""The one rule for every command that writes a directory: never over an input or a stranger.

A command may write a directory only where (a) it is not one of its own inputs, nor inside
one, nor holding one, and (b) nothing is there yet, or what is there is recognisably a
model or adapter directory (what this tool writes), or the user passed ``--force``. Any
other existing path (a file, a folder of the user's own files) is refused before any work
starts, with a message naming it and ``--force``.
"""

import fnmatch
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from modeling.checkpointing.atomic import COMPLETE_MARKER
from modeling.storage.paths import StoragePath, as_path

# What a model or adapter directory holds (Hugging Face, PEFT, Meta, tokenizers).
MODEL_FILE_PATTERNS = (
    "*.safetensors",
    "*.safetensors.index.json",
    "*.bin",
    "*.bin.index.json",
    "*.pth",
    "config.json",
    "generation_config.json",
    "adapter_config.json",
    "params.json",
    "tokenizer*",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    COMPLETE_MARKER,
)
MODEL_DIR_KEYS = ("config.json", "adapter_config.json", "params.json")


def check_output_directory(
    output: str | os.PathLike,
    inputs: Iterable[str | os.PathLike],
    *,
    force: bool = False,
    option: str = "--output",
    recognise: Callable[[list[str]], bool] | None = None,
    stranger: str = "files that are not a model's",
    fix: str = "pass --force to replace it",
) -> None:
    """Raise ``ValueError`` unless ``output`` may be written (see the module docstring).

    Args:
        output: The directory about to be written.
        inputs: The command's inputs (directories or files it reads).
        force: Replace an existing directory that is not recognisably a model.
        option: The option or key that named ``output``, for the message.
        recognise: Given the names in an existing ``output``, whether it is this command's
            own output; default :func:`looks_like_model_dir`.
        stranger: What an unrecognised directory holds, for the message.
        fix: How to write there anyway, for the message (a command without ``--force``
            says what to do instead).
    """
    target = as_path(output)
    for source in inputs:
        if _overlaps(target, as_path(source)):
            raise ValueError(
                f"{option} {target} is {_relation(target, as_path(source))} the input "
                f"{as_path(source)}; writing there would destroy it. Choose a new directory"
            )
    if force or not target.exists():
        return
    if not target.is_dir():
        raise ValueError(
            f"{option} {target} exists and is not a directory; choose another path, or {fix}"
        )
    names = [p.name for p in target.iterdir()]
    if names and not (recognise or looks_like_model_dir)(names):
        shown = ", ".join(
            sorted(n for n in names if not _is_model_file(n))[:5] or sorted(names)[:5]
        )
        raise ValueError(
            f"{option} {target} holds {stranger} ({shown}); choose an empty or new "
            f"directory, or {fix}"
        )


def _is_model_file(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in MODEL_FILE_PATTERNS)


def looks_like_model_dir(names: list[str]) -> bool:
    """Whether a directory holding ``names`` is a model or adapter directory and no more."""
    return any(key in names for key in (*MODEL_DIR_KEYS, COMPLETE_MARKER)) and all(
        _is_model_file(name) for name in names
    )


def _parts(path: Path | StoragePath) -> tuple[str, ...]:
    if isinstance(path, StoragePath):
        return tuple(str(path).split("/"))
    return Path(os.path.realpath(path)).parts


def _overlaps(a: Path | StoragePath, b: Path | StoragePath) -> bool:
    if isinstance(a, StoragePath) != isinstance(b, StoragePath):
        return False
    pa, pb = _parts(a), _parts(b)
    shorter = min(len(pa), len(pb))
    return pa[:shorter] == pb[:shorter]


def _relation(target: Path | StoragePath, source: Path | StoragePath) -> str:
    pt, ps = _parts(target), _parts(source)
    if pt == ps:
        return "the same directory as"
    return "inside" if len(pt) > len(ps) else "a folder holding"
