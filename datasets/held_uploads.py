"""Keep an encrypted upload for an hour when only its column mapping was refused.

The ciphertext is moved, never decrypted to disk; a JSON manifest beside it records what
rebuilds the upload (never its plaintext head, which is decrypted again when it is used).
Only the hold's random id goes to the person's session and form.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from datasets.uploads import HEAD_BYTES, EncryptedUpload, dataset_associated_data
from phm_portal.lib import envelope

HOLD_SECONDS = 3600


@dataclass(frozen=True)
class HeldUpload:
    """What the page says of a held upload: its hold id, file name and size."""

    id: str
    name: str
    size: int


def _folder() -> Path:
    folder = Path(settings.FILE_UPLOAD_TEMP_DIR) / "held"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _paths(hold_id: str) -> tuple[Path, Path] | None:
    """Return the ciphertext and manifest paths of a hold id, or None if it is no uuid."""
    try:
        name = str(uuid.UUID(hold_id))
    except (TypeError, ValueError, AttributeError):
        return None
    folder = _folder()
    return folder / f"{name}.enc", folder / f"{name}.json"


def upload_hold(*, upload: EncryptedUpload, user_id: int) -> HeldUpload:
    """Move the upload's ciphertext aside and write its manifest; return the hold."""
    hold_id = str(uuid.uuid4())
    encrypted, manifest = _paths(hold_id)
    os.replace(upload.path, encrypted)
    record = {
        "id": str(upload.id),
        "name": upload.name,
        "path": encrypted.name,
        "wrapped_key": base64.b64encode(upload.wrapped_key).decode("ascii"),
        "sha256": upload.sha256,
        "size": upload.size,
        "segments": upload.segments,
        "record_starts": upload.record_starts,
        "field_name": upload.field_name,
        "extra": upload.extra,
        "user": user_id,
        "held_at": timezone.now().isoformat(),
    }
    part = manifest.with_suffix(".json.part")
    part.write_text(json.dumps(record), encoding="utf-8")
    os.replace(part, manifest)
    return HeldUpload(id=hold_id, name=upload.name, size=upload.size)


def _manifest(hold_id: str, user_id: int) -> dict | None:
    """Return the manifest of this person's unexpired hold, or None (deleting an expired one)."""
    paths = _paths(hold_id)
    if paths is None:
        return None
    try:
        record = json.loads(paths[1].read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if _expired(record):
        upload_release(hold_id=hold_id)
        return None
    if record.get("user") != user_id:
        return None
    return record


def _expired(record: dict) -> bool:
    try:
        held_at = dt.datetime.fromisoformat(record["held_at"])
    except (KeyError, TypeError, ValueError):
        return True
    return timezone.now() - held_at >= dt.timedelta(seconds=HOLD_SECONDS)


def upload_held(*, hold_id: str, user_id: int) -> HeldUpload | None:
    """Return this person's unexpired hold of this id, or None."""
    record = _manifest(hold_id, user_id)
    if record is None:
        return None
    return HeldUpload(id=str(uuid.UUID(hold_id)), name=record["name"], size=record["size"])


def upload_take(*, hold_id: str, user_id: int) -> EncryptedUpload | None:
    """Claim this person's hold and rebuild its upload (the hold is gone after), or None.

    1. Read the manifest; refuse another person's, an expired or an unknown hold.
    2. Claim the ciphertext by moving it to a fresh upload path (two requests cannot both).
    3. Delete the manifest; decrypt the head of the file again.
    """
    record = _manifest(hold_id, user_id)
    if record is None:
        return None
    encrypted, manifest = _paths(hold_id)
    path = Path(settings.FILE_UPLOAD_TEMP_DIR) / f"upload-{record['id']}-{uuid.uuid4()}.enc"
    try:
        os.replace(encrypted, path)
    except FileNotFoundError:
        return None
    manifest.unlink(missing_ok=True)
    upload = EncryptedUpload(
        id=uuid.UUID(record["id"]),
        name=record["name"],
        path=path,
        wrapped_key=base64.b64decode(record["wrapped_key"]),
        sha256=record["sha256"],
        size=record["size"],
        field_name=record["field_name"],
        extra=record["extra"],
        segments=record["segments"],
        record_starts=record.get("record_starts", []),  # held before they were kept
    )
    upload.head = _head(upload)
    return upload


def _head(upload: EncryptedUpload) -> bytes:
    """Decrypt the first HEAD_BYTES of the upload's plaintext."""
    if not upload.segments:
        return b""
    key = envelope.unwrap(settings.KEY_ENCRYPTION_KEY, upload.wrapped_key)
    with envelope.segmented_reader(
        key,
        open(upload.path, "rb"),  # noqa: SIM115 - the reader closes it
        dataset_associated_data(upload.id),
        [(s["offset"], s["length"]) for s in upload.segments],
    ) as plain:
        return plain.read(HEAD_BYTES)


def upload_release(*, hold_id: str) -> None:
    """Delete a hold: its ciphertext and its manifest."""
    paths = _paths(hold_id)
    if paths is None:
        return
    for path in paths:
        path.unlink(missing_ok=True)


def held_uploads_sweep() -> int:
    """Delete the holds older than an hour (and leftovers with no manifest); return how many."""
    swept = 0
    cutoff = timezone.now().timestamp() - HOLD_SECONDS
    for path in _folder().iterdir():
        if path.suffix == ".json":
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                record = {}
            if _expired(record):
                upload_release(hold_id=path.stem)
                path.unlink(missing_ok=True)
                swept += 1
        elif not path.with_suffix(".json").exists():
            # A ciphertext whose manifest was never written or is being claimed: old ones go.
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink(missing_ok=True)
            except FileNotFoundError:
                pass
    return swept
