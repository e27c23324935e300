"""Watch folders while a request runs: what was written there, and what it held.

A Python audit hook (sys.addaudithook) sees every file opened for writing, by open() or
os.open() (tempfile's files included), before it is opened, and every file removed, before
it is removed: a removed file's content is read then, so a temporary file deleted when the
request ends is still seen. A file made with O_TMPFILE has no name and cannot be read back;
it is reported as such. Files left in the folders are compared with a snapshot too.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path

TEN_DIGITS = re.compile(rb"(?<!\d)\d{10}(?!\d)")
_O_TMPFILE = getattr(os, "O_TMPFILE", 0)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT
_watches: list[DiskWatch] = []
_hook_installed = False


def _dispatch(event: str, args: tuple) -> None:
    if _watches and event in ("open", "os.remove", "os.rename", "os.replace"):
        for watch in list(_watches):
            watch.on_event(event, args)


class DiskWatch:
    """Record the files written under some folders while active; keep what they held."""

    def __init__(self, folders: Iterable[str | os.PathLike]) -> None:
        self.folders = sorted({os.path.realpath(f) for f in folders})
        self.contents: dict[str, bytes | None] = {}  # path -> content (None: not read yet)
        self.written: set[str] = set()  # by this process (the audit hook saw it)
        self.unnamed: list[str] = []  # folders where an O_TMPFILE file was made
        self._busy = False
        self._before: set[str] = set()

    def _under(self, path: object) -> str | None:
        if path is None or isinstance(path, int):
            return None
        real = os.path.realpath(os.fsdecode(path))
        for folder in self.folders:
            if real == folder or real.startswith(folder + os.sep):
                return real
        return None

    def _read(self, path: str) -> None:
        self._busy = True
        try:
            self.contents[path] = Path(path).read_bytes()
        except OSError:
            pass
        finally:
            self._busy = False

    def on_event(self, event: str, args: tuple) -> None:
        if self._busy:
            return
        if event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            real = self._under(path) if writing else None
            if real is None:
                return
            if _O_TMPFILE and isinstance(flags, int) and flags & _O_TMPFILE == _O_TMPFILE:
                self.unnamed.append(real)
            else:
                self.written.add(real)
                self.contents.setdefault(real, None)
        elif event == "os.remove":
            real = self._under(args[0])
            if real is not None and real in self.contents:
                self._read(real)  # before it goes
        else:  # a rename or replace: what the source held may be read under its new name
            source, target = self._under(args[0]), self._under(args[1])
            if source is not None and source in self.contents:
                self._read(source)
            if target is not None:
                self.written.add(target)
                self.contents.setdefault(target, None)

    def __enter__(self) -> DiskWatch:
        global _hook_installed
        if not _hook_installed:
            sys.addaudithook(_dispatch)  # cannot be removed: it does nothing while unused
            _hook_installed = True
        self._before = set(self._files_now())
        _watches.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _watches.remove(self)
        # Files that appeared by other means (other processes share the system's folder
        # too): read for the numbers of the upload, not counted as written here.
        for path in self._files_now():
            if path not in self._before:
                self.contents.setdefault(path, None)
        for path, content in list(self.contents.items()):
            if content is None and os.path.exists(path):
                self._read(path)

    def _files_now(self) -> list[str]:
        out = []
        for folder in self.folders:
            for root, _dirs, names in os.walk(folder):
                out.extend(os.path.realpath(os.path.join(root, n)) for n in names)
        return out

    def leaks(self, numbers: Iterable[str]) -> list[str]:
        """Say which files written held any of these NHS numbers in clear, and any unnamed file."""
        wanted = {n.encode() for n in numbers}
        found = []
        for path, content in sorted(self.contents.items()):
            held = set(TEN_DIGITS.findall(content or b"")) & wanted
            if held:
                found.append(f"{path} held {len(held)} NHS numbers of the upload in clear")
        found += [f"an unnamed temporary file was made in {f}" for f in self.unnamed]
        return found
