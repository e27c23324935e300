"""The pseudonym of an NHS number: HMAC-SHA256 under the programme's key, in C or Python."""

from __future__ import annotations

import hashlib

import numpy as np

# The pseudonym: HMAC-SHA256 truncated to 128 bits, in hex (RFC 2104 allows truncation).
CODE_LENGTH = 32
_HEX = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)), dtype="S2")

try:  # CPython's own SHA-256: the same function as OpenSSL's, with less overhead per call
    from _sha2 import sha256 as _sha256  # Python 3.12 and later
except ImportError:  # pragma: no cover - depends on the interpreter
    try:
        from _sha256 import sha256 as _sha256  # Python 3.11
    except ImportError:
        _sha256 = hashlib.sha256

try:  # HMAC-SHA256 of many messages in one call, in C (built by `make`: datasets/native)
    from datasets.native._hmac import ffi as _ffi
    from datasets.native._hmac import lib as _native
except ImportError:  # pragma: no cover - not built here: Python gives the same codes, slower
    _ffi = _native = None

NATIVE_HMAC = _native is not None


class Hasher:
    """HMAC-SHA256 (RFC 2104) of many short messages.

    In C over OpenSSL's SHA-256 where datasets.native is built (about ten times faster),
    else in Python from precomputed inner and outer states: the digests are the same.
    """

    def __init__(self, key: bytes, *, native: bool = NATIVE_HMAC) -> None:
        self._key = key
        self._native = native and _native is not None
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = _sha256(bytes(b ^ 0x36 for b in key))
        self._outer = _sha256(bytes(b ^ 0x5C for b in key))

    def codes(self, messages: np.ndarray) -> np.ndarray:
        """Return the pseudonyms of messages of one width (a numpy bytes array): each
        one's HMAC truncated to CODE_LENGTH hex digits, as a numpy bytes array."""
        messages = np.ascontiguousarray(messages)
        if self._native:
            out = np.empty(len(messages), dtype=f"S{CODE_LENGTH}")
            self._native_many(messages, out, CODE_LENGTH)
            return out
        raw = self.digests(messages)
        return _HEX[raw[:, : CODE_LENGTH // 2]].reshape(-1).view(f"S{CODE_LENGTH}")

    def digests(self, messages: np.ndarray) -> np.ndarray:
        """Return the digests of messages of one width (a numpy bytes array), one row each."""
        messages = np.ascontiguousarray(messages)
        count, width = len(messages), messages.dtype.itemsize
        out = np.empty((count, 32), dtype=np.uint8)
        if count == 0:
            return out
        if self._native:
            self._native_many(messages, out, 0)
            return out
        inner_copy, outer_copy = self._inner.copy, self._outer.copy
        digests = []
        append = digests.append
        for message in messages.view(np.uint8).reshape(count, width).view(f"V{width}").ravel():
            inner = inner_copy()
            inner.update(message)
            outer = outer_copy()
            outer.update(inner.digest())
            append(outer.digest())
        return np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(count, 32)

    def _native_many(self, messages: np.ndarray, out: np.ndarray, hex_length: int) -> None:
        if not len(messages):
            return
        ok = _native.hmac_sha256_many(
            self._key,
            len(self._key),
            _ffi.from_buffer(messages),
            len(messages),
            messages.dtype.itemsize,
            _ffi.from_buffer(out, require_writable=True),
            hex_length,
        )
        if not ok:
            raise RuntimeError("OpenSSL's SHA-256 failed.")
