"""A check every uploaded file passes before its content is parsed: its kind.

A CSV or text file is expected everywhere; content that is plainly another kind of
file (an image, an archive, a PDF...) is refused, naming what it is. (A path in the
client's file name never arrives: Django's multipart parser keeps only its last part.)
"""

from __future__ import annotations

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
