"""Signed checkpoints of the audit chain, kept outside the database.

A database owner can rewrite an audit event and hash every later one again: the chain
still links. A checkpoint says, under the portal's signing key, what the chain was: one
JSON file per checkpoint in PHM_AUDIT_CHECKPOINT_DIR (point it at write-once storage),
holding

- `statement`: `{format, seq, hash, at, reason, from_seq, hashes_sha256,
  certificate_fingerprint}`, signed (RSA-PSS, SHA-256) as canonical JSON;
- `hashes`: the hash of every event from `from_seq + 1` to `seq`, whose SHA-256 the
  statement signs, so a rewrite is located at the first event that differs;
- `signature`: `{algorithm, certificate_fingerprint, certificate (PEM), value (base64)}`.

An auditor can check a statement without the portal: canonical JSON is
`json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes as crypto_hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings

from phm_portal.lib import signing
from phm_portal.models import AuditEvent

FORMAT = "phm-audit-checkpoint/1"
ALGORITHM = "RSA-PSS-SHA256"
# <seq, 12 digits>-<UTC time to the microsecond>.json: names sort by seq, then time.
NAME = re.compile(r"^(?P<seq>\d{12})-\d{8}T\d{12}Z\.json$")
_PSS = padding.PSS(mgf=padding.MGF1(crypto_hashes.SHA256()), salt_length=32)
_HASH = re.compile(r"^[0-9a-f]{64}$")
# A checkpoint file larger than this is not read (a hash per event: 12 million events).
MAX_BYTES = 1024**3


class CheckpointUnusable(Exception):
    """The file is not a checkpoint this portal signed, or it was changed; says why."""


@dataclass(frozen=True)
class Checkpoint:
    name: str
    statement: dict
    hashes: list[str]
    signature: dict

    @property
    def seq(self) -> int:
        return self.statement["seq"]

    @property
    def from_seq(self) -> int:
        return self.statement["from_seq"]

    @property
    def hash(self) -> str:
        return self.statement["hash"]

    def summary(self) -> dict:
        """Return what the API shows: the signed statement and its signature, no hash list."""
        return {"name": self.name, **self.statement, "signature": self.signature}


def checkpoint_dir() -> Path:
    return Path(settings.PHM_AUDIT_CHECKPOINT_DIR)


def canonical(statement: dict) -> bytes:
    return json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def hashes_digest(hashes: list[str]) -> str:
    return hashlib.sha256("\n".join(hashes).encode("ascii")).hexdigest()


def checkpoint_names() -> list[str]:
    """Return the checkpoint files' names, oldest first (by seq, then time)."""
    try:
        entries = os.listdir(checkpoint_dir())
    except FileNotFoundError:
        return []
    return sorted(name for name in entries if NAME.match(name))


def name_seq(name: str) -> int:
    return int(NAME.match(name)["seq"])


def checkpoint_document(
    *,
    seq: int,
    head_hash: str,
    from_seq: int,
    hashes: list[str],
    reason: str,
    at: dt.datetime,
    identity: signing.Identity,
) -> dict:
    """Return a checkpoint of the chain at seq, signed with the identity."""
    statement = {
        "format": FORMAT,
        "seq": seq,
        "hash": head_hash,
        "at": at.astimezone(dt.UTC).isoformat(),
        "reason": reason,
        "from_seq": from_seq,
        "hashes_sha256": hashes_digest(hashes),
        "certificate_fingerprint": identity.fingerprint,
    }
    value = identity.key.sign(canonical(statement), _PSS, crypto_hashes.SHA256())
    return {
        "statement": statement,
        "hashes": hashes,
        "signature": {
            "algorithm": ALGORITHM,
            "certificate_fingerprint": identity.fingerprint,
            "certificate": identity.certificate.public_bytes(serialization.Encoding.PEM).decode(),
            "value": base64.b64encode(value).decode("ascii"),
        },
    }


def checkpoint_write(document: dict) -> str:
    """Write the checkpoint as a new file, atomically; an existing file is never replaced.

    1. Write and fsync a temporary file in the same folder.
    2. Link it to its final name (fails rather than replace), then remove the temporary name;
       where the storage has no hard links, rename it unless the name is taken.
    """
    statement = document["statement"]
    at = dt.datetime.fromisoformat(statement["at"])
    name = f"{statement['seq']:012d}-{at:%Y%m%dT%H%M%S%f}Z.json"
    folder = checkpoint_dir()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(json.dumps(document, indent=1, ensure_ascii=False).encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, folder / name)
        except FileExistsError:
            raise
        except OSError:  # storage without hard links: a name with microseconds is new
            if (folder / name).exists():
                raise FileExistsError(folder / name) from None
            os.rename(tmp, folder / name)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(folder)
    return name


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def checkpoint_read(name: str) -> Checkpoint:
    """Return the checkpoint in the file; CheckpointUnusable if it cannot be one."""
    path = checkpoint_dir() / name
    try:
        if path.stat().st_size > MAX_BYTES:
            raise CheckpointUnusable("the file is too large to be a checkpoint")
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise CheckpointUnusable("the file is missing") from None
    except (OSError, ValueError) as exc:
        raise CheckpointUnusable(f"the file cannot be read as JSON ({exc})") from None
    try:
        statement = document["statement"]
        hashes = document["hashes"]
        sig = document["signature"]
        ok = (
            statement["format"] == FORMAT
            and isinstance(statement["seq"], int)
            and isinstance(statement["from_seq"], int)
            and 0 <= statement["from_seq"] <= statement["seq"]
            and isinstance(statement["hash"], str)
            and isinstance(hashes, list)
            and all(isinstance(h, str) and _HASH.match(h) for h in hashes)
            and all(isinstance(sig[k], str) for k in ("certificate_fingerprint", "value"))
        )
    except (KeyError, TypeError):
        ok = False
    if not ok:
        raise CheckpointUnusable("the file is not a checkpoint in the portal's format")
    if name_seq(name) != statement["seq"]:
        raise CheckpointUnusable(f"its name says event {name_seq(name)}, its statement another")
    return Checkpoint(name=name, statement=statement, hashes=hashes, signature=sig)


def trusted_certificates() -> dict[str, x509.Certificate]:
    """Return the portal's certificates by fingerprint: the key file's and every one registered."""
    # Imported here: the destruction app owns the key and imports this module's package.
    from destruction.selectors import portal_certificates
    from destruction.services.keys import signing_password

    trusted = {signing.fingerprint(c): c for c in portal_certificates()}
    try:
        identity = signing.load_identity(Path(settings.PHM_SIGNING_P12_FILE), signing_password())
    except signing.SigningKeyMissing:
        pass
    else:
        trusted[identity.fingerprint] = identity.certificate
    return trusted


def checkpoint_check(checkpoint: Checkpoint, trusted: dict[str, x509.Certificate]) -> None:
    """Raise CheckpointUnusable unless the portal's key signed this statement and hash list."""
    statement = checkpoint.statement
    fingerprint = checkpoint.signature["certificate_fingerprint"]
    certificate = trusted.get(fingerprint)
    if certificate is None or statement.get("certificate_fingerprint") != fingerprint:
        raise CheckpointUnusable("it is not signed with a certificate of this portal")
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise CheckpointUnusable("the portal's certificate holds no RSA key")
    try:
        value = base64.b64decode(checkpoint.signature["value"], validate=True)
        public_key.verify(value, canonical(statement), _PSS, crypto_hashes.SHA256())
    except (InvalidSignature, ValueError):
        raise CheckpointUnusable(
            "its signature does not match its content: it was forged or changed after signing"
        ) from None
    if hashes_digest(checkpoint.hashes) != statement["hashes_sha256"]:
        raise CheckpointUnusable("its list of event hashes was changed after signing")
    if len(checkpoint.hashes) != checkpoint.seq - checkpoint.from_seq or (
        checkpoint.hashes and checkpoint.hashes[-1] != checkpoint.hash
    ):
        raise CheckpointUnusable("its list of event hashes does not end at its event")


def checkpoint_first_difference(checkpoint: Checkpoint) -> tuple[int, str] | None:
    """Return the first event (seq, why) that differs from what the checkpoint signed, or None."""
    expected = range(checkpoint.from_seq + 1, checkpoint.seq + 1)
    stored = (
        AuditEvent.objects.filter(seq__gt=checkpoint.from_seq, seq__lte=checkpoint.seq)
        .order_by("seq")
        .values_list("seq", "hash")
        .iterator(chunk_size=5000)
    )
    signed = dict(zip(expected, checkpoint.hashes, strict=True))
    next_seq = checkpoint.from_seq + 1
    for seq, digest in stored:
        if seq != next_seq:
            return next_seq, f"it is missing, but checkpoint {checkpoint.name} signed it"
        if digest != signed[seq]:
            return seq, f"its hash is not the one checkpoint {checkpoint.name} signed"
        next_seq += 1
    if next_seq <= checkpoint.seq:
        return next_seq, f"it is missing, but checkpoint {checkpoint.name} signed it"
    return None
