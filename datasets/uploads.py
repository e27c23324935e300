"""Receive an extract as it streams in, encrypting every chunk before it touches the disk.

Django's default handlers would keep a large upload as a plaintext temporary file;
this handler replaces them for the upload views (set before the body is read).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload

from datasets.pipeline.framing import RecordStarts
from phm_portal.lib import envelope

HEAD_BYTES = 64 * 1024
# The extract is encrypted in segments of this much plaintext, each readable on its own, so
# that a job's chunk starts decrypting near its own first byte.
SEGMENT_BYTES = 4 * 1024 * 1024


@dataclass
class EncryptedUpload:
    """What the handler made of one uploaded file; `path` holds only ciphertext."""

    id: uuid.UUID
    name: str
    path: Path
    wrapped_key: bytes
    sha256: str = ""
    size: int = 0
    head: bytes = b""
    too_large: bool = False
    field_name: str = "file"
    extra: dict = field(default_factory=dict)
    # Per segment: ciphertext offset and length, and the plaintext offset where it starts.
    segments: list[dict] = field(default_factory=list)
    # Where records start, decided once here (datasets.pipeline.framing.RecordStarts).
    record_starts: list[list[int]] = field(default_factory=list)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def dataset_associated_data(dataset_id: uuid.UUID) -> bytes:
    return f"dataset:{dataset_id}".encode()


class EncryptingUploadHandler(FileUploadHandler):
    """Encrypt the `file` field of a multipart upload chunk by chunk; enforce the size limit."""

    chunk_size = 1024 * 1024

    def __init__(self, request=None) -> None:
        super().__init__(request)
        self.segment_bytes = SEGMENT_BYTES
        self.upload: EncryptedUpload | None = None
        self.limit = settings.PHM_UPLOAD_MAX_BYTES
        self._writer = None
        self._file = None
        self._hash = None

    def new_file(
        self,
        field_name,
        file_name,
        content_type,
        content_length,
        charset=None,
        content_type_extra=None,
    ):
        super().new_file(
            field_name, file_name, content_type, content_length, charset, content_type_extra
        )
        if self.upload is not None:
            raise StopUpload(connection_reset=False)  # one file per request
        dataset_id = uuid.uuid4()
        key = envelope.new_data_key(settings.KEY_ENCRYPTION_KEY)
        path = Path(settings.FILE_UPLOAD_TEMP_DIR) / f"upload-{dataset_id}.enc"
        # A file name from the client is kept only as a label, never as a path.
        label = (
            os.path.basename((file_name or "extract.csv").replace("\\", "/"))[:200] or "extract.csv"
        )
        self.upload = EncryptedUpload(dataset_id, label, path, key.wrapped, field_name=field_name)
        self._file = open(path, "wb")  # noqa: SIM115 - closed in file_complete or on abort
        self._writer = envelope.SegmentedWriter(
            key, self._file, dataset_associated_data(dataset_id), self.segment_bytes
        )
        self._hash = hashlib.sha256()
        self._records = RecordStarts()

    def receive_data_chunk(self, raw_data, start):
        upload = self.upload
        upload.size += len(raw_data)
        if upload.size > self.limit:
            upload.too_large = True
            self._close()
            upload.discard()
            raise StopUpload(connection_reset=False)
        if len(upload.head) < HEAD_BYTES:
            upload.head += raw_data[: HEAD_BYTES - len(upload.head)]
        self._hash.update(raw_data)
        self._records.feed(raw_data)
        self._writer.write(raw_data)
        return None

    def file_complete(self, file_size):
        segments = self._close()
        self.upload.sha256 = self._hash.hexdigest()
        self.upload.segments = [
            {"offset": offset, "length": length, "start": i * self.segment_bytes}
            for i, (offset, length) in enumerate(segments)
        ]
        self.upload.record_starts = self._records.starts()
        return self.upload

    def upload_interrupted(self):
        if self.upload is not None:
            self._close()
            self.upload.discard()

    def _close(self) -> list[tuple[int, int]]:
        segments = []
        if self._writer is not None:
            self._writer.close()
            segments = self._writer.segments
            self._writer = None
        if self._file is not None:
            self._file.close()
            self._file = None
        return segments
