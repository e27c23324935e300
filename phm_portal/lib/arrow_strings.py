"""Arrow string arrays seen as numpy bytes, and back, without copying or per-row work."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def string_buffers(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Return the offsets and the bytes of a string array, as numpy views (no copy)."""
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[
        array.offset : array.offset + len(array) + 1
    ]
    data = array.buffers()[2]
    return offsets, (np.frombuffer(data, dtype=np.uint8) if data else np.zeros(0, np.uint8))


def fixed_width(array: pa.Array, width: int) -> np.ndarray | None:
    """Return the rows x width bytes of a string array whose values all have `width` bytes."""
    offsets, data = string_buffers(array)
    n = len(array)
    if n == 0 or offsets[-1] - offsets[0] != n * width or not (np.diff(offsets) == width).all():
        return None
    return data[offsets[0] : offsets[0] + n * width].reshape(n, width)


def from_fixed_width(values: np.ndarray, width: int) -> pa.Array:
    """Build a string array from a numpy array of fixed-width byte strings."""
    offsets = np.arange(0, (len(values) + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(
        len(values),
        pa.py_buffer(offsets),
        pa.py_buffer(np.ascontiguousarray(values).view(np.uint8)),
    )
