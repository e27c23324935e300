"""Checks every uploaded file passes before its content is parsed: its name and its kind.

A file name carrying a folder path ("../../x.csv", "C:\\data\\x.csv") is refused while
the request is parsed, before anything is written (Django's own parser would quietly
keep only the last part). A CSV or text file is expected everywhere; content that is
plainly another kind of file (an image, an archive, a PDF...) is refused, naming what it is.
"""

from __future__ import annotations

import html

from django.http.multipartparser import MultiPartParser, MultiPartParserError
from django.utils.datastructures import ImmutableList


class UnsafeFileName(MultiPartParserError):
    """A file's name in a multipart request carries a path; the request is refused."""


def name_problem(file_name: str) -> str | None:
    """Say what is wrong with a client's file name, or None when it is a plain name."""
    name = html.unescape(file_name)
    if "/" in name or "\\" in name or name.strip() in {".", ".."}:
        shown = name if len(name) <= 80 else name[:77] + "..."
        return (
            f"The file name {shown!r} includes a folder path; send the file under its own "
            "name only (such as 'extract.csv')."
        )
    return None


class StrictMultiPartParser(MultiPartParser):
    """Django's multipart parser, refusing a file name with a path instead of trimming it."""

    def sanitize_file_name(self, file_name: str) -> str | None:
        problem = name_problem(file_name)
        if problem:
            raise UnsafeFileName(problem)
        return super().sanitize_file_name(file_name)


def parse_file_upload_strictly(request, META, post_data):
    """HttpRequest.parse_file_upload with the strict parser (see StrictUploadsMiddleware)."""
    request.upload_handlers = ImmutableList(
        request.upload_handlers,
        warning="You cannot alter upload handlers after the upload has been processed.",
    )
    return StrictMultiPartParser(META, post_data, request.upload_handlers, request.encoding).parse()


# Leading bytes of kinds of file people attach by mistake (or on purpose).
MAGIC: list[tuple[bytes, str]] = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Excel or Word file)"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel or Word file"),
    (b"\x7fELF", "a program"),
    (b"MZ", "a Windows program"),
]


def kind_problem(head: bytes) -> str | None:
    """Say which other kind of file the first bytes show, or None for text."""
    for magic, kind in MAGIC:
        if head.startswith(magic):
            return f"The file is {kind}, not a CSV text file."
    return None
