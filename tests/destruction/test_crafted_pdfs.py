"""Crafted PDFs on the public verifier: a clear answer on the page, the API and the command.

A file that is not a readable PDF is a 400 naming the field `file` (the command fails with
the reason); a readable PDF whose signature is absent or broken is `valid: false` with a
reason. Nothing is named (serial, programme, run, signer) unless the portal's signature
validates, and every answer comes in bounded time.
"""

from __future__ import annotations

import html
import re
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError

from destruction import services
from phm_portal.lib import signing

SECONDS = 10  # the most any one answer may take, on any entry point


# --- making PDFs --------------------------------------------------------------------------
def build_pdf(objects: dict[int, bytes], *, trailer: bytes | None = None) -> bytes:
    """Return a PDF of these numbered objects with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number, body in sorted(objects.items()):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    size = max(objects) + 1
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += (
            b"%010d 00000 n \n" % offsets[number]
            if number in offsets
            else b"0" * 10 + b" 65535 f \n"
        )
    out += b"trailer\n" + (trailer or b"<< /Size %d /Root 1 0 R >>" % size)
    out += b"\nstartxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


PAGES = {
    2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
}
CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"


def with_signature_field(field: bytes, **more: bytes) -> bytes:
    """Return a one-page PDF whose form has one signature field (object 4)."""
    catalog = b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R] /SigFlags 3 >> >>"
    extra = {int(k[1:]): v for k, v in more.items()}  # o5=... is object 5
    return build_pdf({1: catalog, **PAGES, 4: field, **extra})


def signature_dictionary(*, contents: bytes, byte_range: bytes) -> bytes:
    return (
        b"<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached"
        b" /ByteRange %s /Contents %s >>" % (byte_range, contents)
    )


def flate_bomb(mib: int) -> bytes:
    """Return a zlib stream that inflates to `mib` MiB of zeros (about 1 KB per MiB)."""
    chunk = b"\0" * (1 << 20)
    compressor = zlib.compressobj(9)
    first = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeat = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush()[:-4]  # the last block, without the Adler-32 of 2 MiB
    adler32 = (((mib << 20) % 65521) << 16) | 1  # of that many zeros
    return first + repeat * (mib - 1) + end + struct.pack(">I", adler32)


def with_object_stream(stream_dict: bytes, data: bytes) -> bytes:
    """Return a PDF whose catalogue is object 1 in the object stream 5 (xref stream 6)."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = {}
    for number, body in PAGES.items():
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    offsets[5] = len(out)
    out += b"5 0 obj\n%s\nstream\n%s\nendstream\nendobj\n" % (stream_dict, data)
    offsets[6] = len(out)
    rows = [struct.pack(">BIH", 0, 0, 65535), struct.pack(">BIH", 2, 5, 0)]
    rows += [struct.pack(">BIH", 1, offsets[n], 0) for n in (2, 3)]
    rows += [struct.pack(">BIH", 0, 0, 0), struct.pack(">BIH", 1, offsets[5], 0)]
    rows += [struct.pack(">BIH", 1, offsets[6], 0)]
    table = b"".join(rows)
    out += b"6 0 obj\n<< /Type /XRef /Size 7 /W [1 4 2] /Root 1 0 R /Length %d >>\n" % len(table)
    out += b"stream\n" + table + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % offsets[6]
    return bytes(out)


def with_xref_stream_bomb() -> bytes:
    """Return a PDF whose cross-reference stream inflates to 2 GiB."""
    bomb = flate_bomb(2048)
    head = b"%PDF-1.7\n"
    obj = b"1 0 obj\n<< /Type /XRef /Size 2 /W [1 4 2] /Root 1 0 R /Filter /FlateDecode"
    obj += b" /Length %d >>\nstream\n%s\nendstream\nendobj\n" % (len(bomb), bomb)
    return head + obj + b"startxref\n%d\n%%%%EOF\n" % len(head)


def with_object_stream_bomb() -> bytes:
    """Return a PDF whose catalogue is in an object stream that inflates to 2 GiB."""
    bomb = flate_bomb(2048)
    stream_dict = b"<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length %d >>" % len(bomb)
    return with_object_stream(stream_dict, bomb)


def truncated_xref() -> bytes:
    """Return a PDF cut in the middle of its cross-reference table, with a new end."""
    pdf = build_pdf({1: CATALOG, **PAGES})
    xref_at = pdf.index(b"xref")
    return pdf[: xref_at + 30] + b"\nstartxref\n%d\n%%%%EOF\n" % xref_at


def replace_same_length(pdf: bytes, old: bytes, new: bytes) -> bytes:
    assert old in pdf and len(new) <= len(old)
    return pdf.replace(old, new.ljust(len(old)), 1)


def byte_range_of(pdf: bytes) -> bytes:
    return re.search(rb"/ByteRange \[[^\]]*\]", pdf).group()


# --- asking the three entry points -------------------------------------------------------
@dataclass
class Answer:
    entry: str
    status: int  # HTTP status; for the command 200 when it ran and printed its verdict
    text: str  # what the person reads
    body: dict | None = None  # the API's JSON


def words(response) -> str:
    text = re.sub(r"<[^>]+>", " ", response.content.decode())
    return html.unescape(" ".join(text.split()))


def ask_page(client, pdf: bytes) -> Answer:
    page = client.post("/verify/", {"file": SimpleUploadedFile("c.pdf", pdf, "application/pdf")})
    return Answer("page", page.status_code, words(page))


def ask_api(api, pdf: bytes) -> Answer:
    upload = SimpleUploadedFile("c.pdf", pdf, "application/pdf")
    response = api().post("/api/v1/certificates/verify/", {"file": upload}, format="multipart")
    body = response.json()
    return Answer("api", response.status_code, str(body), body)


def ask_command(tmp_path: Path, pdf: bytes, capsys) -> Answer:
    path = tmp_path / "uploaded.pdf"
    path.write_bytes(pdf)
    try:
        call_command("verify_certificate", str(path))
    except CommandError as exc:
        out = capsys.readouterr().out
        status = 200 if "NOT valid" in str(exc) else 400
        return Answer("command", status, f"{out} {exc}")
    return Answer("command", 200, capsys.readouterr().out)


def ask_everywhere(client, api, tmp_path, capsys, pdf: bytes) -> list[Answer]:
    answers = []
    for ask in (
        lambda: ask_page(client, pdf),
        lambda: ask_api(api, pdf),
        lambda: ask_command(tmp_path, pdf, capsys),
    ):
        started = time.monotonic()
        answer = ask()
        assert time.monotonic() - started < SECONDS, answer.entry
        answers.append(answer)
    return answers


# --- the cases ----------------------------------------------------------------------------
@pytest.fixture
def portal_signed(db) -> bytes:
    """A one-page PDF signed with the portal's key (the portal never issued it)."""
    identity = services.signing_key_init()
    return signing.sign_pdf(
        build_pdf({1: CATALOG, **PAGES}), identity, reason="test", location="test", name="t"
    )


UNREADABLE: dict[str, tuple[Callable[[], bytes], str]] = {
    "empty file": (lambda: b"", "The file is empty."),
    "not a PDF": (lambda: b"nhs_number,event\n9434765919,dissent\n", "is not a PDF"),
    "50,000 [ and nothing else": (lambda: b"%PDF-1.7\n" + b"[" * 50_000, "does not end with"),
    "10 MB of [ where the cross-reference stream should be": (
        lambda: (
            b"%PDF-1.7\n1 0 obj\n<< /Type /XRef /W "
            + b"[" * 10_000_000
            + b"\nendobj\nstartxref\n9\n%%EOF\n"
        ),
        "nested too deeply",
    ),
    "a catalogue nested 50,000 deep": (
        lambda: build_pdf({1: b"[" * 50_000, **PAGES}),
        "nested too deeply",
    ),
    "a catalogue that is a number": (
        lambda: build_pdf({1: b"42", **PAGES}),
        "missing or of the wrong type",
    ),
    "a root that is missing": (
        lambda: build_pdf(PAGES, trailer=b"<< /Size 4 /Root 9 0 R >>"),
        "document catalogue cannot be read",
    ),
    "a truncated cross-reference table": (truncated_xref, "cannot be read"),
    "a startxref pointing past the end": (
        lambda: build_pdf({1: CATALOG, **PAGES}).replace(b"startxref\n", b"startxref\n99999"),
        "does not point to a cross-reference section",
    ),
    "a cross-reference stream that inflates to 2 GiB": (
        with_xref_stream_bomb,
        "inflates past the checker's limit",
    ),
    "an object stream that inflates to 2 GiB": (
        with_object_stream_bomb,
        "inflates past the checker's limit",
    ),
}

NOT_VALID: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "an unsigned PDF": (lambda signed: build_pdf({1: CATALOG, **PAGES}), "carries no signature"),
    "a signature field whose /V is a number": (
        lambda signed: with_signature_field(b"<< /FT /Sig /T (Sig) /V 5 >>"),
        "not a signature dictionary",
    ),
    "a signature field whose /V is a missing object": (
        lambda signed: with_signature_field(b"<< /FT /Sig /T (Sig) /V 99 0 R >>"),
        "not a signature dictionary",
    ),
    "a signature whose /Contents is a number": (
        lambda signed: with_signature_field(
            b"<< /FT /Sig /T (Sig) /V 5 0 R >>",
            o5=signature_dictionary(contents=b"7", byte_range=b"[0 1 2 3]"),
        ),
        "/Contents must be string-like",
    ),
    "a signature whose /Contents is not CMS": (
        lambda signed: with_signature_field(
            b"<< /FT /Sig /T (Sig) /V 5 0 R >>",
            o5=signature_dictionary(contents=b"<3082ffff>", byte_range=b"[0 1 2 3]"),
        ),
        "damaged and cannot be checked",
    ),
    "a portal signature whose /ByteRange is a string": (
        lambda signed: replace_same_length(signed, byte_range_of(signed), b"/ByteRange (x)"),
        "cannot be checked",
    ),
    "a portal signature whose /ByteRange runs past the end": (
        lambda signed: replace_same_length(
            signed, byte_range_of(signed), b"/ByteRange [0 99999999 -5 7]"
        ),
        "cannot be checked",
    ),
    "a portal signature with one byte changed": (
        lambda signed: replace_same_length(signed, b"595", b"596"),
        "changed after it was signed",
    ),
    "a portal signature with bytes added after it": (
        lambda signed: signed + b"\n% added\n1 0 obj\n<< >>\nendobj\n",
        "not covered",
    ),
}


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_a_file_that_is_not_a_readable_pdf_is_a_400_naming_the_file(
    case, client, api, tmp_path, capsys, db
):
    make, reason = UNREADABLE[case]
    page, response, command = ask_everywhere(client, api, tmp_path, capsys, make())
    assert page.status == 400 and reason in page.text
    assert "This certificate is" not in page.text
    assert response.status == 400 and list(response.body) == ["file"]
    assert reason in response.body["file"][0]
    assert command.status == 400 and "cannot be checked" in command.text and reason in command.text


@pytest.mark.parametrize("case", list(NOT_VALID))
def test_a_pdf_whose_signature_is_absent_or_broken_is_not_valid_and_says_why(
    case, client, api, tmp_path, capsys, portal_signed
):
    make, reason = NOT_VALID[case]
    page, response, command = ask_everywhere(client, api, tmp_path, capsys, make(portal_signed))
    assert page.status == 200 and "This certificate is not valid" in page.text
    assert reason in page.text
    assert response.status == 200 and response.body["valid"] is False
    assert any(reason in r for r in response.body["reasons"])
    named = ("serial", "programme", "programme_name", "run", "signed_by", "signed_at")
    assert all(response.body[key] is None for key in named)
    assert command.status == 200 and "NOT valid" in command.text and reason in command.text


def test_a_file_that_needs_more_than_the_limits_is_refused_in_time(
    client, api, tmp_path, capsys, db, settings
):
    settings.PHM_CERTIFICATE_CHECK_SECONDS = 1
    fields = b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [" + b"3 0 R " * 1_500_000
    pdf = build_pdf({1: fields + b"] >> >>", **PAGES})  # 9 MB: millions of objects to parse
    page, response, command = ask_everywhere(client, api, tmp_path, capsys, pdf)
    assert page.status == 400 and "within" in page.text
    assert response.status == 400 and "not a certificate this portal issued" in str(response.body)
    assert command.status == 400 and "within" in command.text


def test_a_file_over_the_size_limit_is_a_413_on_page_and_api(client, api, db, settings):
    settings.PHM_CERTIFICATE_MAX_BYTES = 100
    pdf = build_pdf({1: CATALOG, **PAGES})
    assert ask_page(client, pdf).status == 413
    response = ask_api(api, pdf)
    assert response.status == 413 and "limit of 100 bytes" in response.body["file"][0]


def test_the_command_refuses_a_file_over_the_size_limit(tmp_path, capsys, db, settings):
    settings.PHM_CERTIFICATE_MAX_BYTES = 100
    answer = ask_command(tmp_path, build_pdf({1: CATALOG, **PAGES}), capsys)
    assert answer.status == 400 and "limit of 100 bytes" in answer.text


def test_an_unsigned_pdf_quoting_a_real_serial_names_no_programme_or_run(
    client, api, tmp_path, capsys, destroyed
):
    serial = destroyed.certificate.serial.encode()
    title = b"<< /Type /Catalog /Pages 2 0 R /Lang (%s) >>" % serial
    pdf = build_pdf({1: title, **PAGES, 4: b"(Certificate %s of run %d)" % (serial, destroyed.pk)})
    page, response, command = ask_everywhere(client, api, tmp_path, capsys, pdf)
    for answer in (page, response, command):
        assert "Testshire" not in answer.text and "testshire" not in answer.text
    assert "Serial number" not in page.text and "Destruction run" not in page.text
    body = response.body
    assert body["valid"] is False and body["reasons"] == ["The PDF carries no signature."]
    assert (body["serial"], body["programme"], body["run"]) == (None, None, None)
    assert "Programme:" not in command.text and "Destruction run:" not in command.text


def test_a_genuine_certificate_still_verifies_everywhere_with_programme_and_run(
    client, api, tmp_path, capsys, destroyed
):
    pdf = bytes(destroyed.certificate.pdf)
    page, response, command = ask_everywhere(client, api, tmp_path, capsys, pdf)
    assert page.status == 200 and "This certificate is valid" in page.text
    assert destroyed.certificate.serial in page.text and "Testshire PHM" in page.text
    body = response.body
    assert body["valid"] is True and body["reasons"] == []
    assert (body["serial"], body["programme"], body["run"]) == (
        destroyed.certificate.serial,
        "testshire",
        destroyed.pk,
    )
    assert "PHM governance portal" in body["signed_by"] and body["signed_at"]
    assert (
        "The certificate is valid." in command.text and "Programme: Testshire PHM" in command.text
    )


def test_the_command_line_says_why_without_a_traceback(tmp_path, capsys, db):
    from destruction.management.commands.verify_certificate import Command

    path = tmp_path / "deep.pdf"
    path.write_bytes(build_pdf({1: b"[" * 50_000, **PAGES}))
    with pytest.raises(SystemExit) as exit_:
        Command().run_from_argv(["manage.py", "verify_certificate", str(path)])
    assert exit_.value.code != 0
    stderr = capsys.readouterr().err
    assert "cannot be checked" in stderr and "nested too deeply" in stderr
    assert "Traceback" not in stderr
