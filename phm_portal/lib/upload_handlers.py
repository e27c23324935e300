"""Keep uploaded files in memory, never on disk, up to a hard limit: the default for every upload.

Django's default handlers write a file larger than FILE_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) to a
plain temporary file while it streams in; a Type 1 opt-out file or a national check's file
holds NHS numbers, which must never touch the disk in clear. So every upload is held in
memory by `MemoryOnlyUploadHandler` (settings.FILE_UPLOAD_HANDLERS), and a request whose
files together pass PHM_MEMORY_UPLOAD_MAX_BYTES is refused with a 413 as soon as the limit
is crossed (phm_portal.errorviews.bad_request answers it, for pages and API alike).

The one exception is an extract, which may be gigabytes: its views replace the handlers
before the body is read with datasets.uploads.EncryptingUploadHandler, which encrypts each
chunk before it is written.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.http.multipartparser import MultiPartParserError


class UploadTooLarge(MultiPartParserError):
    """The files of a request pass the in-memory limit; answered with a 413 naming it."""

    status_code = 413

    def __init__(self, *, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"The upload is too large: the files of one request may hold at most {limit} "
            "bytes (PHM_MEMORY_UPLOAD_MAX_BYTES). Nothing was stored."
        )


class MemoryOnlyUploadHandler(MemoryFileUploadHandler):
    """Hold every file of the request in memory, whatever its size, up to the hard limit."""

    def __init__(self, request=None) -> None:
        super().__init__(request)
        self.limit = settings.PHM_MEMORY_UPLOAD_MAX_BYTES
        self.received = 0

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        # Unlike Django's handler, stay active for a large request: no handler after this
        # one may write the file to disk.
        self.activated = True

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.file.close()
            raise UploadTooLarge(limit=self.limit)
        self.file.write(raw_data)
        return None
