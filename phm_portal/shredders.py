"""What each app holds of a programme's data, and how it is destroyed (after pretix's shredders).

Every app that holds a programme's data has a module `<app>/shredder.py` with a
`SHREDDER`. The destruction app asks each in turn, in INSTALLED_APPS order, and never
touches their models: it writes the manifest from their answers, runs their steps, and
signs the certificate that lists each part.

Each step takes the programme and the app's part of the manifest (written before
anything is destroyed), may run again after a crash (it does only what is left), and
returns its evidence. `renew` keeps the destruction step's lease on long work.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field

from django.apps import apps

Renew = Callable[[], None]


def _nothing(*args, **kwargs) -> dict:
    return {}


def _no_checks(*args, **kwargs) -> list[dict]:
    return []


@dataclass(frozen=True)
class Line:
    """A line of the certificate's table: what, how many, and how many bytes if files."""

    label: str
    count: int
    bytes: int | None = None


@dataclass(frozen=True)
class Shredder:
    """An app's part of destruction: what it holds of a programme and how it goes."""

    app: str
    # One sentence for the certificate: what the app holds of a programme.
    holds: str
    manifest: Callable[..., dict]  # (programme, renew) -> its part, with "lines"
    erase_keys: Callable[..., dict] = _nothing  # (programme, part) -> evidence
    delete_files: Callable[..., dict] = _nothing  # (programme, part, renew) -> evidence
    delete_rows: Callable[..., dict] = _nothing  # (programme, part) -> evidence
    verify: Callable[..., list[dict]] = _no_checks  # (programme, part) -> [{check, passed}]
    # Counts of what would go now, without hashing: the destruction pages' preview.
    preview: Callable[..., dict] = field(default=lambda programme: {})


def shredders() -> list[Shredder]:
    """Return every app's shredder, in INSTALLED_APPS order."""
    found = []
    for config in apps.get_app_configs():
        name = f"{config.name}.shredder"
        if "." in config.name or importlib.util.find_spec(name) is None:
            continue
        found.append(importlib.import_module(name).SHREDDER)
    return found


def lines_of(part: dict) -> list[Line]:
    """Return the certificate lines an app's manifest part carries."""
    return [Line(**line) for line in part.get("lines", [])]
