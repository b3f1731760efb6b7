"""Write a ``torch.save`` file of a flat ``{name: tensor}`` dict one tensor at a time.

``torch.save`` pickles the whole object first and so needs every tensor in memory at
once. Its zip format does not: each storage is its own record (``data/N``) and the
pickle (``data.pkl``) only refers to them by key. :class:`TorchArchiveWriter` writes each
tensor's record as it arrives and the pickle last, so writing a model holds one tensor at
a time. For tensors that own their storage (a state dict's) every record is byte for byte
what ``torch.save`` writes for the same dict, only in another order within the zip; a view
is written as its own bytes (straight from memory) rather than its base's. ``torch.load(path,
weights_only=True, mmap=True)`` reads it.
"""

import io
import pickle
import sys
from collections import OrderedDict
from pathlib import Path

import torch
from torch.utils.serialization import config as serialization_config

# torch.save's defaults: its pickle protocol and its format's version record.
_PICKLE_PROTOCOL = 2
_FORMAT_VERSION = "1"


class _StorageRef:
    """A storage already written as record ``data/{key}``: the pickle refers to it by key."""

    def __init__(self, key: str, dtype: torch.dtype, numel: int) -> None:
        self.key, self.dtype, self.numel = key, dtype, numel

    def persistent_id(self) -> tuple:
        """What torch's pickler writes for a storage (``torch.serialization._save``)."""
        if self.dtype in torch.storage._new_dtypes():  # saved as untyped bytes + a dtype
            nbytes = self.numel * self.dtype.itemsize
            return ("storage", torch.UntypedStorage, self.key, "cpu", nbytes)
        storage_type = getattr(torch, torch.storage._dtype_to_storage_type_map()[self.dtype])
        return ("storage", storage_type, self.key, "cpu", self.numel)


class _TensorRef:
    """A contiguous tensor stored whole in one record, pickled as ``Tensor.__reduce_ex__`` does."""

    def __init__(self, storage: _StorageRef, shape: tuple[int, ...], stride: tuple[int, ...]):
        self.storage, self.shape, self.stride = storage, shape, stride

    def __reduce_ex__(self, protocol):
        args = (self.storage, 0, self.shape, self.stride, False, OrderedDict())
        if self.storage.dtype in torch.storage._new_dtypes():
            return (torch._utils._rebuild_tensor_v3, (*args, self.storage.dtype))
        return (torch._utils._rebuild_tensor_v2, args)


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        return obj.persistent_id() if isinstance(obj, _StorageRef) else None


class TorchArchiveWriter:
    """Write ``{name: tensor}`` to ``path`` in ``torch.save``'s format, tensor by tensor.

    Use as a context manager; the archive is completed on a clean exit only (a failed
    write leaves an incomplete file for the caller's atomic directory to discard).

    Args:
        path: The file to write.

    Example:
        >>> with TorchArchiveWriter(path) as archive:  # doctest: +SKIP
        ...     for name, tensor in tensors:
        ...         archive.add(name, tensor)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._zip = torch._C.PyTorchFileWriter(
            str(self.path),
            torch.serialization.get_crc32_options(),
            serialization_config.save.storage_alignment,
        )
        self._entries: dict[str, _TensorRef] = {}

    def add(self, name: str, tensor: torch.Tensor) -> None:
        """Write ``tensor``'s bytes now, under ``name`` (its own record, like ``torch.save``).

        Raises:
            ValueError: For a name already written.
        """
        if name in self._entries:
            raise ValueError(f"{self.path.name}: tensor {name!r} was already written")
        tensor = tensor.detach().cpu().contiguous()
        nbytes = tensor.numel() * tensor.element_size()
        data = tensor.untyped_storage()
        offset = tensor.storage_offset() * tensor.element_size()
        if offset or data.nbytes() != nbytes:  # a view: its own bytes, sliced without a copy
            data = data[offset : offset + nbytes]
        storage = _StorageRef(str(len(self._entries)), tensor.dtype, tensor.numel())
        self._zip.write_record(f"data/{storage.key}", data, nbytes)
        self._entries[name] = _TensorRef(storage, tuple(tensor.shape), tensor.stride())

    def close(self) -> None:
        """Write the pickle that names every tensor, and the archive's end."""
        buffer = _pickle(self._entries)
        self._zip.write_record("data.pkl", buffer, len(buffer))
        self._zip.write_record(".format_version", _FORMAT_VERSION, len(_FORMAT_VERSION))
        alignment = str(serialization_config.save.storage_alignment)
        self._zip.write_record(".storage_alignment", alignment, len(alignment))
        self._zip.write_record("byteorder", sys.byteorder, len(sys.byteorder))
        self._zip.write_end_of_file()

    def __enter__(self) -> "TorchArchiveWriter":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()


def _pickle(entries: dict[str, _TensorRef]) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=_PICKLE_PROTOCOL).dump(entries)
    return buffer.getvalue()
