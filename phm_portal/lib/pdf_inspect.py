"""Read an untrusted PDF's signature in a separate, limited process, and say what it found.

Anyone may upload a file to be checked, so the bytes are hostile until proved otherwise:
nesting deep enough to exhaust the stack, objects of the wrong type where pyHanko expects a
dictionary, cross-references to nothing, streams that inflate to gigabytes, millions of
tokens in one object. pyHanko reads lazily and bounds what it decodes (its DecodeLimits,
tightened here), but no in-process guard bounds the memory and time of parsing one huge
object. So the reading runs in a child process that first caps its own address space and
CPU time, and sends back one JSON answer; the parent kills it after a wall-clock timeout.

Children are forked by multiprocessing's fork server, a single-threaded process started
once with pyHanko already imported, so a check costs a fork, not a new interpreter, and
never forks the threaded web process itself. The answer travels as JSON bytes, not a
pickle, so a child fed hostile input can at worst lie, never run code in the parent (and
the portal trusts a "valid" only for bytes whose hash it issued).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import re
from dataclasses import dataclass

# The answer is a small JSON object; anything longer is not ours.
_MAX_ANSWER_BYTES = 64 * 1024
_MAX_DETAIL_CHARS = 160


class InspectionFailed(Exception):
    """The file could not be read as a PDF within the limits; the message says why."""


@dataclass(frozen=True)
class Limits:
    """What one inspection may spend: wall-clock seconds and megabytes of address space."""

    seconds: float
    memory_mb: int


# --- parent side -----------------------------------------------------------------------
_PRELOAD = ["phm_portal.lib.pdf_inspect", "pyhanko.sign.validation", "pyhanko_certvalidator"]


def inspect(data: bytes, trusted_der: list[bytes], *, limits: Limits) -> dict:
    """Return what the child says of the PDF's signature; InspectionFailed if unreadable.

    1. Fork a child from the fork server; it caps its own memory and CPU before it reads.
    2. Wait at most `limits.seconds` for its answer, then kill it whatever it is doing.
    3. Accept only one well-formed JSON answer; anything else (a crash, a memory error
       outside Python, silence) means the file could not be read within the limits.
    """
    refusal = _first_look(data)
    if refusal:
        raise InspectionFailed(refusal)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)  # used when the fork server first starts
    receiver, sender = context.Pipe(duplex=False)
    cpu_seconds = max(1, math.ceil(limits.seconds))
    child = context.Process(
        target=_child,
        args=(sender, data, trusted_der, limits.memory_mb, cpu_seconds),
        name="pdf-inspect",
        daemon=True,
    )
    child.start()
    sender.close()
    raw = None
    try:
        if receiver.poll(limits.seconds):
            raw = receiver.recv_bytes(_MAX_ANSWER_BYTES)
        else:
            child.kill()
            raise InspectionFailed(
                f"The PDF could not be read within {limits.seconds:g} seconds; it is not a "
                "certificate this portal issued."
            )
    except (EOFError, OSError):  # the child died without answering, or said too much
        raw = None
    finally:
        receiver.close()
        child.join(timeout=1)  # it ends by itself once it has answered
        if child.exitcode is None:
            child.kill()
            child.join()
        child.close()
    try:
        answer = json.loads(raw) if raw else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or answer.get("outcome") not in ("unreadable", "checked"):
        raise InspectionFailed(
            "The PDF could not be read within the checker's memory and time limits; it is "
            "not a certificate this portal issued."
        )
    if answer["outcome"] == "unreadable":
        raise InspectionFailed(_text(answer.get("reason")) or "The PDF cannot be read.")
    return answer


_OBJECT_HEADER = re.compile(rb"\s*\d{1,10}\s+\d{1,5}\s+obj\b")
_STARTXREF = re.compile(rb"startxref\s+(\d{1,12})\s+%%EOF")


def _first_look(data: bytes) -> str | None:
    """Say why the bytes are plainly not a readable PDF, without parsing them, or None.

    A PDF begins with %PDF- and ends with "startxref", the offset of its last
    cross-reference section, and %%EOF. Without these a reader searches the whole file
    byte by byte, so they are looked for here, in the parent, in microseconds.
    """
    if not data:
        return "The file is empty."
    if not data.startswith(b"%PDF-"):
        return "The file is not a PDF: it does not begin with %PDF-."
    ends = list(_STARTXREF.finditer(data[-1024:]))
    if not ends:
        return "The PDF is incomplete or damaged: it does not end with startxref and %%EOF."
    offset = int(ends[-1].group(1))
    at = data[offset : offset + 64]
    if not (at.lstrip().startswith(b"xref") or _OBJECT_HEADER.match(at)):
        return "The PDF is damaged: its startxref does not point to a cross-reference section."
    return None


def _text(value: object) -> str:
    return value[:1000] if isinstance(value, str) else ""


# --- child side -----------------------------------------------------------------------
class _Unreadable(Exception):
    pass


def _detail(exc: BaseException) -> str:
    """Say briefly what went wrong, in printable characters only."""
    if isinstance(exc, RecursionError):
        return "its objects are nested too deeply"
    if isinstance(exc, MemoryError):
        return "it needs more memory than the checker allows"
    from pyhanko.pdf_utils.misc import PdfDecodeLimitError

    if isinstance(exc, PdfDecodeLimitError):
        return "a compressed stream inflates past the checker's limit"
    if isinstance(exc, AssertionError):  # pyHanko asserts the type of what it resolved
        return "an object is missing or of the wrong type"
    text = " ".join("".join(c if c.isprintable() else " " for c in str(exc)).split())
    text = text.rstrip(".")
    if len(text) > _MAX_DETAIL_CHARS:
        text = text[: _MAX_DETAIL_CHARS - 3] + "..."
    return text or f"unexpected {type(exc).__name__}"


def _decode_limits():
    """Limits far above what a portal certificate needs (it decodes almost nothing)."""
    from pyhanko.pdf_utils.decode_limits import (
        DecodeLimits,
        DocumentDecodeBudget,
        StreamDecodeLimits,
    )

    mib = 1024 * 1024
    return DecodeLimits(
        per_stream=StreamDecodeLimits(max_ratio=1100, max_output_size=16 * mib),
        document_budget=DocumentDecodeBudget(base_allowance=32 * mib, max_ratio=4),
    )


def _open(data: bytes):
    """Return the reader and the filled signature fields; _Unreadable if the PDF is not."""
    import io

    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.fields import enumerate_sig_fields

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False, decode_limits=_decode_limits())
    except Exception as exc:
        raise _Unreadable(f"The PDF cannot be read: {_detail(exc)}.") from None
    try:
        root = reader.root
    except Exception as exc:
        raise _Unreadable(
            f"The PDF cannot be read: its document catalogue cannot be read ({_detail(exc)})."
        ) from None
    if not isinstance(root, generic.DictionaryObject):
        raise _Unreadable("The PDF cannot be read: it has no document catalogue.")
    try:
        fields = list(enumerate_sig_fields(reader, filled_status=True))
    except Exception as exc:
        raise _Unreadable(f"The PDF cannot be read: {_detail(exc)}.") from None
    return reader, fields


def _signature(reader, fields: list, reasons: list[str]):
    """Return the last well-formed embedded signature, noting each damaged one in reasons."""
    from pyhanko.pdf_utils import generic
    from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature

    signatures = []
    for name, value, field_ref in fields:
        shown = name if isinstance(name, str) and name.isprintable() else "?"
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        try:
            if not isinstance(value.get_object(), generic.DictionaryObject):
                raise ValueError("its value is not a signature dictionary")
            signature = EmbeddedPdfSignature(reader, field_ref, name)
            if signature.sig_object_type != "/Sig":
                continue  # a document timestamp, not a signature
            signatures.append(signature)
        except Exception as exc:
            reasons.append(
                f"The signature field {shown!r} is damaged and cannot be checked: {_detail(exc)}."
            )
    if len(signatures) > 1:
        reasons.append("The PDF carries more than one signature; a certificate has one.")
    return max(signatures, key=lambda s: s.signed_revision) if signatures else None


def _check(data: bytes, trusted_der: list[bytes]) -> dict:
    """Validate the PDF's signature against the trusted certificates (in the child)."""
    import asyncio
    import hashlib

    from asn1crypto import x509 as asn1_x509
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    try:
        reader, fields = _open(data)
    except _Unreadable as exc:
        return {"outcome": "unreadable", "reason": str(exc)}
    answer: dict = {"outcome": "checked", "signed": False, "reasons": []}
    reasons = answer["reasons"]
    try:
        signature = _signature(reader, fields, reasons)
    except Exception as exc:
        return {"outcome": "unreadable", "reason": f"The PDF cannot be read: {_detail(exc)}."}
    if signature is None:
        if not reasons:
            reasons.append("The PDF carries no signature.")
        return answer
    context = ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(c) for c in trusted_der],
        allow_fetching=False,
        revocation_mode="soft-fail",
    )
    try:
        status = asyncio.run(async_validate_pdf_signature(signature, context))
    except Exception as exc:
        reasons.append(f"The signature cannot be checked: {_detail(exc)}.")
        return answer
    intact = bool(status.intact and status.valid)
    answer.update(
        signed=True,
        intact=intact,
        trusted=bool(status.trusted) and intact,
        whole_file=status.coverage == SignatureCoverageLevel.ENTIRE_FILE,
        signer_subject=status.signing_cert.subject.human_friendly,
        signer_fingerprint=hashlib.sha256(status.signing_cert.dump()).hexdigest(),
        signed_at=status.signer_reported_dt.isoformat() if status.signer_reported_dt else None,
    )
    return answer


def _limit_self(memory_mb: int, cpu_seconds: int) -> None:
    import resource

    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _child(sender, data: bytes, trusted_der: list[bytes], memory_mb: int, cpu_seconds: int):
    """Check the PDF under limits and send the answer as JSON bytes (in the child)."""
    import logging

    _limit_self(memory_mb, cpu_seconds)
    # pyHanko logs a warning, often with a traceback, for each oddity of a hostile file.
    logging.disable(logging.CRITICAL)
    try:
        answer = _check(data, trusted_der)
    except Exception as exc:  # RecursionError, MemoryError... outside the guarded steps
        answer = {"outcome": "unreadable", "reason": f"The PDF cannot be read: {_detail(exc)}."}
    sender.send_bytes(json.dumps(answer).encode())
    sender.close()
