"""Envelope encryption of files: a fresh data key per file, wrapped by the key-encryption key.

The file body is encrypted with Tink's streaming AEAD (AES256_GCM_HKDF_1MB: authenticated
segments, so a file is written and read as a stream and any changed byte fails). The
data key (a Tink keyset) is wrapped with AES-256-GCM under the key-encryption key (KEK)
from configuration and stored beside the file's row, never in the clear. Deleting the
wrapped key makes every copy of the file unreadable (crypto-shredding).
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import tink
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from tink import secret_key_access, streaming_aead

streaming_aead.register()

_TEMPLATE = streaming_aead.streaming_aead_key_templates.AES256_GCM_HKDF_1MB
_WRAP_AD = b"phm-portal data key v1"


class DecryptionFailed(Exception):
    """The file or its key does not authenticate: changed, truncated, or another key."""


@dataclass(frozen=True)
class DataKey:
    """A file's data key: the Tink keyset and its wrapped (stored) form."""

    handle: tink.KeysetHandle
    wrapped: bytes

    def primitive(self) -> streaming_aead.StreamingAead:
        return self.handle.primitive(streaming_aead.StreamingAead)


def wrap_secret(kek: bytes, secret: bytes, purpose: bytes) -> bytes:
    """Return a secret encrypted under the KEK (AES-256-GCM), bound to its purpose."""
    nonce = os.urandom(12)
    return nonce + AESGCM(kek).encrypt(nonce, secret, purpose)


def unwrap_secret(kek: bytes, wrapped: bytes, purpose: bytes) -> bytes:
    """Return a wrapped secret; DecryptionFailed if the KEK or the purpose is not its own."""
    try:
        return AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], purpose)
    except Exception as exc:  # cryptography raises InvalidTag
        raise DecryptionFailed("The key cannot be unwrapped with this key-encryption key.") from exc


def new_data_key(kek: bytes) -> DataKey:
    """Return a fresh data key and its form wrapped under the KEK."""
    handle = tink.new_keyset_handle(_TEMPLATE)
    serialized = tink.proto_keyset_format.serialize(handle, secret_key_access.TOKEN)
    return DataKey(handle, wrap_secret(kek, serialized, _WRAP_AD))


def unwrap(kek: bytes, wrapped: bytes) -> DataKey:
    """Return the data key from its wrapped form; DecryptionFailed if the KEK is not its own."""
    serialized = unwrap_secret(kek, wrapped, _WRAP_AD)
    handle = tink.proto_keyset_format.parse(serialized, secret_key_access.TOKEN)
    return DataKey(handle, wrapped)


class _KeepOpen(io.RawIOBase):
    """Let Tink close its stream without closing the file under it."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def write(self, b) -> int:
        return self._raw.write(b)

    def readinto(self, b) -> int:
        data = self._raw.read(len(b))
        b[: len(data)] = data
        return len(data)


class _Encrypting(io.BufferedIOBase):
    """Tink's encrypting stream, with a large write of bytes handed to Tink as it is.

    Tink's own buffered writer passes such a write on as a memoryview, which Tink then
    copies into bytes: one more copy of everything a job writes.
    """

    def __init__(self, buffered: io.BufferedWriter) -> None:
        self._buffered = buffered

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        if type(b) is not bytes or len(b) < io.DEFAULT_BUFFER_SIZE:
            return self._buffered.write(b)
        self._buffered.flush()  # what came before goes first
        raw = self._buffered.raw
        done = raw.write(b)
        while done < len(b):  # Tink took part of it: the rest
            done += raw.write(memoryview(b)[done:])
        return len(b)

    def flush(self) -> None:
        if not self._buffered.closed:
            self._buffered.flush()

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._buffered.close()  # Tink writes the last segment and its tag
        finally:
            super().close()


def encrypting_writer(key: DataKey, destination: BinaryIO, associated_data: bytes) -> BinaryIO:
    """Return a writable stream whose bytes reach `destination` encrypted; close it to finish."""
    return _Encrypting(
        key.primitive().new_encrypting_stream(_KeepOpen(destination), associated_data)
    )


class _Reader(io.RawIOBase):
    """A readable stream whose read() returns bytes as they come (no copy); readinto(),
    for buffered readers, copies them."""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


class _Decrypting(_Reader):
    """A readable plaintext stream that turns Tink's errors into DecryptionFailed."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def read(self, size: int = -1) -> bytes:
        try:
            # Tink's stream is buffered: read(-1) reads to the end (it has no readall).
            return self._inner.read(-1 if size is None or size < 0 else size)
        except tink.TinkError as exc:
            raise DecryptionFailed("The encrypted file is damaged or was changed.") from exc

    def read_some(self, size: int) -> bytes:
        """Return up to `size` bytes as Tink decrypted them (b"" at the end), perhaps fewer.

        Tink's buffered reader would copy a large read into a buffer of its own first.
        """
        try:
            return self._inner.raw.read(size)
        except tink.TinkError as exc:
            raise DecryptionFailed("The encrypted file is damaged or was changed.") from exc


def decrypting_reader(key: DataKey, source: BinaryIO, associated_data: bytes) -> BinaryIO:
    """Return a readable stream of the plaintext of `source`."""
    try:
        inner = key.primitive().new_decrypting_stream(source, associated_data)
    except tink.TinkError as exc:
        raise DecryptionFailed("The encrypted file is damaged or was changed.") from exc
    return _Decrypting(inner)


def iter_plaintext(
    key: DataKey, source: BinaryIO, associated_data: bytes, size: int = 1 << 20
) -> Iterator[bytes]:
    reader = decrypting_reader(key, source, associated_data)
    while True:
        chunk = reader.read(size)
        if not chunk:
            return
        yield chunk


# --- segmented files: a reader may start at any segment -----------------------------
def _segment_ad(associated_data: bytes, index: int) -> bytes:
    return associated_data + b"/segment/" + str(index).encode()


class _Counting(io.RawIOBase):
    """Pass writes through to a file, counting the bytes, and never close it."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        written = self._raw.write(b)
        self.count += len(b) if written is None else written
        return len(b)


class SegmentedWriter(io.RawIOBase):
    """Encrypt a stream as consecutive segments of `segment_bytes` of plaintext each.

    Each segment is a Tink stream of its own, bound by its associated data to its file and
    its place, so that a reader may start at any segment without decrypting the ones
    before it (a job's chunks start in the middle of an extract). `segments` lists each
    one's ciphertext offset and length; stored beside the wrapped key, it also lets a
    reader notice a segment cut away or moved.
    """

    def __init__(
        self, key: DataKey, destination: BinaryIO, associated_data: bytes, segment_bytes: int
    ) -> None:
        self._key = key
        self._sink = _Counting(destination)
        self._ad = associated_data
        self.segment_bytes = segment_bytes
        self.segments: list[tuple[int, int]] = []
        self._stream = None
        self._left = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        view = memoryview(b)
        while view:
            if self._stream is None:
                self._open()
            take = min(self._left, len(view))
            self._stream.write(view[:take])
            self._left -= take
            view = view[take:]
            if self._left == 0:
                self._finish()
        return len(b)

    def close(self) -> None:
        if self._stream is not None:
            self._finish()
        super().close()

    def _open(self) -> None:
        self._start = self._sink.count
        self._stream = encrypting_writer(
            self._key, self._sink, _segment_ad(self._ad, len(self.segments))
        )
        self._left = self.segment_bytes

    def _finish(self) -> None:
        self._stream.close()
        self._stream = None
        self.segments.append((self._start, self._sink.count - self._start))


class _Bounded(_Reader):
    """Read `length` bytes of a seekable file from `offset`, then report the end."""

    def __init__(self, raw: BinaryIO, offset: int, length: int) -> None:
        self._raw = raw
        self._offset = offset
        self._left = length

    def read(self, size: int = -1) -> bytes:
        # Tink reads with read(): the file's bytes are passed on as they are, not copied.
        if self._left <= 0:
            return b""
        if self._offset is not None:
            self._raw.seek(self._offset)
            self._offset = None
        data = self._raw.read(self._left if size is None or size < 0 else min(size, self._left))
        self._left -= len(data)
        return data


class _SegmentedReader(_Reader):
    def __init__(self, key, source, associated_data, segments, first) -> None:
        self._key = key
        self._source = source
        self._ad = associated_data
        self._segments = segments
        self._next = first
        self._current = None

    def read(self, size: int = -1) -> bytes:
        """Return up to `size` bytes of plaintext (fewer at the end of a segment)."""
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(1 << 20), b""))
        while True:
            if self._current is None:
                if self._next >= len(self._segments):
                    return b""
                offset, length = self._segments[self._next]
                self._current = decrypting_reader(
                    self._key,
                    _Bounded(self._source, offset, length),
                    _segment_ad(self._ad, self._next),
                )
                self._next += 1
            data = self._current.read_some(size)
            if data:
                return data
            self._current = None

    def close(self) -> None:
        self._source.close()
        super().close()


def segmented_reader(
    key: DataKey,
    source: BinaryIO,
    associated_data: bytes,
    segments: list[tuple[int, int]],
    first: int = 0,
    *,
    buffered: bool = True,
) -> BinaryIO:
    """Return the plaintext of a segmented file from segment `first` on (`source` seekable).

    Unbuffered, a read returns Tink's bytes as they are (not copied into a buffer), and may
    return fewer than asked at the end of a segment: for readers of large blocks.
    """
    reader = _SegmentedReader(key, source, associated_data, segments, first)
    return io.BufferedReader(reader) if buffered else reader


# --- sealed files: small parts, each read on its own -----------------------------------
# A compiled opt-out list or a re-identification index: a few parts of packed arrays,
# written once, read whole or part by part. AES-256-GCM under a fresh data key per file,
# the data key wrapped under the KEK in the file's head; each part is bound by its
# associated data to its file, its place and the number of parts (a part moved, cut away
# or swapped with another file's fails). Deleting the file erases it.
_SEALED_MAGIC = b"PHMSEAL1"
_SEALED_WRAP = b"phm-portal sealed file v1"


def _sealed_ad(associated_data: bytes, index: int, count: int) -> bytes:
    return associated_data + f"/part/{index}/of/{count}".encode()


class SealedWriter:
    """Write a sealed file part by part, holding one part at a time.

    The parts' plaintext sizes are known beforehand, so the table of their offsets
    (AES-GCM adds a nonce and a tag to each) is written first.
    """

    def __init__(
        self, kek: bytes, sink: BinaryIO, associated_data: bytes, sizes: list[int]
    ) -> None:
        data_key = os.urandom(32)
        self._aead = AESGCM(data_key)
        self._sink = sink
        self._ad = associated_data
        self._sizes = list(sizes)
        self._written = 0
        wrapped = wrap_secret(kek, data_key, _SEALED_WRAP)
        offsets = [0]
        for size in self._sizes:
            offsets.append(offsets[-1] + 12 + size + 16)
        sink.write(
            b"".join(
                (
                    _SEALED_MAGIC,
                    len(wrapped).to_bytes(4, "little"),
                    wrapped,
                    len(self._sizes).to_bytes(4, "little"),
                    b"".join(o.to_bytes(8, "little") for o in offsets),
                )
            )
        )

    def write_part(self, part: bytes) -> None:
        index = self._written
        if index >= len(self._sizes) or len(part) != self._sizes[index]:
            raise ValueError("A sealed file's parts must have the sizes announced.")
        nonce = os.urandom(12)
        count = len(self._sizes)
        self._sink.write(
            nonce + self._aead.encrypt(nonce, part, _sealed_ad(self._ad, index, count))
        )
        self._written += 1

    def close(self) -> None:
        if self._written != len(self._sizes):
            raise ValueError("A sealed file was closed before all its parts were written.")


def seal_parts(kek: bytes, parts: list[bytes], associated_data: bytes) -> bytes:
    """Return a sealed file of `parts`, each readable without decrypting the others."""
    out = io.BytesIO()
    writer = SealedWriter(kek, out, associated_data, [len(p) for p in parts])
    for part in parts:
        writer.write_part(part)
    writer.close()
    return out.getvalue()


class SealedReader:
    """Read the parts of a sealed file (`source` seekable), one at a time."""

    def __init__(self, kek: bytes, source: BinaryIO, associated_data: bytes) -> None:
        self._source = source
        self._ad = associated_data
        try:
            if source.read(8) != _SEALED_MAGIC:
                raise ValueError("not a sealed file")
            wrapped = source.read(int.from_bytes(source.read(4), "little"))
            self.count = int.from_bytes(source.read(4), "little")
            table = source.read(8 * (self.count + 1))
            if len(table) != 8 * (self.count + 1):
                raise ValueError("truncated")
            # One call for the whole table: a re-identification opens hundreds of these.
            self._offsets = struct.unpack(f"<{self.count + 1}Q", table)
        except (ValueError, struct.error) as exc:
            raise DecryptionFailed("The sealed file is damaged or was changed.") from exc
        self._body = source.tell()
        self._aead = AESGCM(unwrap_secret(kek, wrapped, _SEALED_WRAP))

    def part(self, index: int) -> bytes:
        """Return the plaintext of one part; DecryptionFailed if it does not authenticate."""
        if not 0 <= index < self.count:
            raise IndexError(index)
        start, end = self._offsets[index], self._offsets[index + 1]
        self._source.seek(self._body + start)
        body = self._source.read(end - start)
        try:
            return self._aead.decrypt(body[:12], body[12:], _sealed_ad(self._ad, index, self.count))
        except Exception as exc:  # cryptography raises InvalidTag
            raise DecryptionFailed("The sealed file is damaged or was changed.") from exc
