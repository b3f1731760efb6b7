"""Lazy tensor readers for safetensors and torch (``.bin``/``.pth``) weight files.

Nothing here holds more than the tensors the caller keeps: safetensors tensors come from
``safe_open`` (memory-mapped, so pages are read when first used and a mapping ends with
its last tensor), each file opened per tensor so no mapping outlives what was read, and
torch files are memory-mapped with ``weights_only=True`` (no code is ever unpickled).
:class:`TensorIndex` and :func:`read_hf_slice` read just the slice a shard needs, for
loaders where no rank may hold the full state dict. Files behind a URI
(:class:`~modeling.storage.paths.StoragePath`) are read the same way: safetensors by byte
ranges (:class:`RangedSafetensors`), torch files fetched once per node into its cache.
"""

from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from modeling.checkpointing.ranged_safetensors import SAFETENSORS_DTYPES, RangedSafetensors
from modeling.convert import KeyMapper, hf_to_interleaved
from modeling.storage import cached_local_copy
from modeling.storage.paths import StoragePath

Index = tuple[slice, ...]


def is_safetensors(path: Path) -> bool:
    """Whether ``path`` is read as safetensors (by suffix)."""
    return path.suffix == ".safetensors"


def load_torch_file(path: Path) -> dict[str, torch.Tensor]:
    """A memory-mapped ``torch.load`` of a weights-only file.

    Raises:
        ValueError: Naming the file when it is not a readable weights-only torch file.
    """
    local = cached_local_copy(str(path)) if isinstance(path, StoragePath) else path
    try:
        return torch.load(local, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # torch raises several types for corrupt/unsafe files
        first_line = next((line for line in str(err).splitlines() if line.strip()), "")
        raise ValueError(
            f"Cannot read {path} as a weights-only torch checkpoint ({type(err).__name__}: "
            f"{first_line.strip()}); it is truncated, corrupt, or pickles more than tensors "
            f"(only weights are ever loaded): download it again or convert it to safetensors"
        ) from err


def safetensors_keys(path: Path) -> list[str]:
    """The tensor names in a safetensors file (header only).

    Raises:
        ValueError: Naming the file when its header is invalid (truncated or corrupt).
    """
    if isinstance(path, StoragePath):
        return RangedSafetensors(str(path)).keys()
    with _open(path) as f:
        return list(f.keys())


def iter_file_tensors(
    path: Path, keys: Iterable[str] | None = None
) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(key, tensor)`` of one weight file, one tensor at a time."""
    if is_safetensors(path) and isinstance(path, StoragePath):
        ranged = RangedSafetensors(str(path))
        for key in ranged.keys() if keys is None else keys:
            yield key, ranged.read(key)
        return
    if is_safetensors(path):
        for key in safetensors_keys(path) if keys is None else keys:
            with _open(path) as f:
                yield key, _checked(path, key, lambda f=f, key=key: f.get_tensor(key))
        return
    tensors = load_torch_file(path)
    for key in list(tensors) if keys is None else keys:
        yield key, tensors.pop(key)


def iter_hf_tensors(
    files: Iterable[Path], keys: Iterable[str] | None = None
) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(key, tensor)`` from several weight files, optionally only ``keys``."""
    wanted = None if keys is None else set(keys)
    for path in files:
        if wanted is None:
            yield from iter_file_tensors(path)
            continue
        present = safetensors_keys(path) if is_safetensors(path) else list(load_torch_file(path))
        yield from iter_file_tensors(path, [key for key in present if key in wanted])


class TensorIndex:
    """Where each tensor of a multi-file checkpoint lives, for reading whole or sliced.

    Only headers are read on construction (torch files are memory-mapped).

    Args:
        files: The checkpoint's weight files.
    """

    def __init__(self, files: Iterable[Path]) -> None:
        self.files = list(files)
        self.location: dict[str, Path] = {}
        self._torch: dict[Path, dict[str, torch.Tensor]] = {}
        self._ranged: dict[StoragePath, RangedSafetensors] = {}
        self._meta: dict[str, tuple[tuple[int, ...], torch.dtype]] = {}
        for path in self.files:
            if is_safetensors(path) and isinstance(path, StoragePath):
                ranged = self._ranged[path] = RangedSafetensors(str(path))
                for key in ranged.keys():  # noqa: SIM118 (not a mapping)
                    self._meta[key] = (ranged.shape(key), ranged.dtype(key))
                    self.location[key] = path
            elif is_safetensors(path):
                with _open(path) as f:
                    for key in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                        part = f.get_slice(key)
                        self._meta[key] = (tuple(part.get_shape()), _dtype(part.get_dtype()))
                        self.location[key] = path
            else:
                tensors = self._torch[path] = load_torch_file(path)
                for key, tensor in tensors.items():
                    self._meta[key] = (tuple(tensor.shape), tensor.dtype)
                    self.location[key] = path

    def names(self) -> list[str]:
        """Every tensor name, in file order."""
        return list(self.location)

    def shape(self, key: str) -> tuple[int, ...]:
        """A tensor's shape, from the header."""
        return self._meta[self._known(key)][0]

    def dtype(self, key: str) -> torch.dtype:
        """A tensor's dtype, from the header."""
        return self._meta[self._known(key)][1]

    def nbytes(self, key: str) -> int:
        """A tensor's size in bytes."""
        shape, dtype = self._meta[self._known(key)]
        return torch.Size(shape).numel() * dtype.itemsize

    def read(self, key: str, index: Index | None = None) -> torch.Tensor:
        """The tensor ``key``, or only ``tensor[index]`` (read without the rest)."""
        path = self.location[self._known(key)]
        if path in self._ranged:
            return self._ranged[path].read(key, index)
        if path in self._torch:
            tensor = self._torch[path][key]
            return (tensor if index is None else tensor[index]).clone()
        with _open(path) as f:  # not kept open: a mapped file would stay in RSS
            if index is None:
                return _checked(path, key, lambda: f.get_tensor(key))
            return _checked(path, key, lambda: f.get_slice(key)[index])

    def _known(self, key: str) -> str:
        if key not in self.location:
            raise KeyError(f"Tensor {key!r} is in none of {[p.name for p in self.files]}")
        return key


def hf_rows(index: TensorIndex, mapper: KeyMapper, key: str) -> tuple[int, int]:
    """Where our tensor ``key`` sits in its Hugging Face tensor: ``(first row, rows)``.

    A fused tensor (Phi-3's qkv, gate/up) holds several of ours, one block of rows each;
    any other holds exactly one, all of its rows.
    """
    rule, part, layer = mapper.our_rule(key)
    rows = index.shape(rule.hf.format(layer))[0]
    if rule.fused is None:
        return 0, rows
    sizes = mapper.split_sizes(rule, rows)
    return sum(sizes[:part]), sizes[part]


def read_hf_slice(
    index: TensorIndex, mapper: KeyMapper, key: str, dim: int, start: int, stop: int
) -> torch.Tensor:
    """``our_state_dict[key].narrow(dim, start, stop - start)``, reading only that slice.

    Works for every tensor, fused (Phi-3 qkv, gate/up) and rotary-permuted (q/k) ones
    included: a dim-0 slice of a permuted projection reads the whole heads it touches and
    un-permutes them; a slice of a fused tensor reads only its part's rows.

    Args:
        index: The checkpoint's tensors.
        mapper: The key map of the checkpoint's model_type.
        key: One of our keys, e.g. ``layers.0.attn.q_proj.weight``.
        dim: The dim to slice.
        start: First index along ``dim``.
        stop: One past the last index along ``dim``.
    """
    rule, part, layer = mapper.our_rule(key)
    hf_key = rule.hf.format(layer)
    shape = index.shape(hf_key)
    offset, rows = hf_rows(index, mapper, key)
    if not 0 <= dim < len(shape) or not 0 <= start <= stop <= (rows if dim == 0 else shape[dim]):
        raise ValueError(
            f"Slice dim={dim} [{start}:{stop}] is outside {key!r} of shape {(rows, *shape[1:])}"
        )
    heads = mapper.rotary_heads(rule, part)
    if dim == 0:
        lo, hi = start, stop
        if heads is not None:  # widen to whole heads: the permutation acts within a head
            head_dim = rows // heads
            lo, hi = start // head_dim * head_dim, -(-stop // head_dim) * head_dim
        whole = offset == 0 and lo == 0 and hi == shape[0]
        # A whole tensor is read without slicing: safetensors then maps it without a copy.
        tensor = (
            index.read(hf_key) if whole else index.read(hf_key, (slice(offset + lo, offset + hi),))
        )
        if heads is not None:
            tensor = hf_to_interleaved(tensor, (hi - lo) // head_dim)
        return tensor[start - lo : stop - lo]
    columns = (slice(None),) * (dim - 1) + (slice(start, stop),)
    tensor = index.read(hf_key, (slice(offset, offset + rows), *columns))
    return tensor if heads is None else hf_to_interleaved(tensor, heads)


def _open(path: Path):
    try:
        return safe_open(str(path), framework="pt", device="cpu")
    except (SafetensorError, OSError) as err:
        raise ValueError(
            f"Cannot read {path} as safetensors ({err}); the file is truncated or corrupt: "
            f"download it again"
        ) from err


def _checked(path: Path, key: str, read):
    try:
        return read()
    except SafetensorError as err:
        raise ValueError(
            f"Cannot read tensor {key!r} from {path} ({err}); download it again"
        ) from err


def _dtype(name: str) -> torch.dtype:
    return SAFETENSORS_DTYPES[name]
