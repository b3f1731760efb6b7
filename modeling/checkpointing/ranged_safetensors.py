"""A safetensors file behind a URI, read by byte ranges: the header once, then only rows.

The format is an 8-byte little-endian header length, a JSON header giving each tensor's
dtype, shape and ``data_offsets`` within the data section, then the data, row-major. So
rows ``[a, b)`` of a tensor are one contiguous byte range, and a rank that owns those rows
fetches exactly them with one ranged GET (:class:`~modeling.storage.RangeReader`
coalesces, parallelises and retries) and never the rest of the file.
"""

import json
import math

import torch

from modeling.storage import RangeReader

SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
# A header larger than this is not a safetensors header (the format caps it at 100 MB).
MAX_HEADER_BYTES = 100_000_000


class RangedSafetensors:
    """Tensors of one remote ``.safetensors`` object, read whole or by leading-dim rows.

    Args:
        uri: The object's URI.

    Raises:
        ValueError: Naming the URI when its header is not a safetensors header.
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._reader = RangeReader(uri)
        (head,) = self._reader.read([(0, 8)]) if self._reader.size >= 8 else (b"",)
        length = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 0 < length <= min(MAX_HEADER_BYTES, self._reader.size - 8):
            raise ValueError(
                f"Cannot read {uri} as safetensors (no valid header); the object is truncated "
                f"or not a safetensors file: upload it again"
            )
        (header,) = self._reader.read([(8, length)])
        try:
            entries = json.loads(header)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"Cannot read {uri} as safetensors ({err}): upload it again") from err
        entries.pop("__metadata__", None)
        self._data_start = 8 + length
        self._entries = {
            key: (SAFETENSORS_DTYPES[e["dtype"]], tuple(e["shape"]), tuple(e["data_offsets"]))
            for key, e in entries.items()
        }

    def keys(self) -> list[str]:
        """The tensor names, in header order."""
        return list(self._entries)

    def shape(self, key: str) -> tuple[int, ...]:
        """A tensor's shape."""
        return self._entries[key][1]

    def dtype(self, key: str) -> torch.dtype:
        """A tensor's dtype."""
        return self._entries[key][0]

    def read(self, key: str, index: tuple[slice, ...] | None = None) -> torch.Tensor:
        """``tensor[index]``, fetching only the rows the leading slice selects.

        Args:
            key: The tensor's name.
            index: Slices, the first along dim 0 (step 1); None for the whole tensor.
        """
        dtype, shape, (begin, end) = self._entries[key]
        if not shape:  # a scalar: the whole (tiny) tensor
            return self._tensor(self._fetch(begin, end - begin), dtype, shape)
        rows, rest = (index[0], index[1:]) if index else (slice(None), ())
        start, stop, step = rows.indices(shape[0])
        if step != 1:
            raise ValueError(f"Only contiguous row slices of {key!r} can be read, got {rows}")
        stop = max(start, stop)
        row_bytes = math.prod(shape[1:]) * dtype.itemsize
        data = self._fetch(begin + start * row_bytes, (stop - start) * row_bytes)
        tensor = self._tensor(data, dtype, (stop - start, *shape[1:]))
        return tensor[(slice(None), *rest)] if rest else tensor

    def _fetch(self, offset: int, length: int) -> bytearray:
        if length == 0:
            return bytearray()
        (data,) = self._reader.read([(self._data_start + offset, length)])
        return bytearray(data)

    @staticmethod
    def _tensor(data: bytearray, dtype: torch.dtype, shape: tuple[int, ...]) -> torch.Tensor:
        if not data:
            return torch.empty(shape, dtype=dtype)
        return torch.frombuffer(data, dtype=dtype).reshape(shape)
