"""The signed certificate: what it says, what validators say, tampering and foreign keys."""

from __future__ import annotations

import io

import pypdf
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from destruction import selectors, services
from destruction.models import Certificate, SigningCertificate
from phm_portal.errors import InvalidInput
from phm_portal.lib import signing


def text_of(pdf: bytes) -> str:
    return " ".join(
        " ".join(page.extract_text().split()) for page in pypdf.PdfReader(io.BytesIO(pdf)).pages
    )


def portal_context() -> ValidationContext:
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives import serialization

    roots = [
        asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))
        for c in selectors.portal_certificates()
    ]
    return ValidationContext(trust_roots=roots, allow_fetching=False)


def flip_signed_byte(pdf: bytes) -> bytes:
    """Return the PDF with one byte changed inside the range the signature covers."""
    signature = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0]
    start, length = signature.byte_range[0], signature.byte_range[1]
    position = start + length // 2
    data = bytearray(pdf)
    data[position] ^= 0x01
    return bytes(data)


def test_the_certificate_gives_the_full_address_of_the_verify_page(destroyed):
    text = text_of(bytes(destroyed.certificate.pdf))
    assert "check it at http://127.0.0.1:8000/verify/" in text


def test_the_certificate_names_what_was_destroyed_how_when_and_by_whom(destroyed, job):
    certificate = destroyed.certificate
    text = text_of(bytes(certificate.pdf))
    assert certificate.serial in text and "Testshire PHM" in text and "Testshire" in text
    for controller in ("Practice A Surgery (A81001)", "Practice B Surgery (B82002)"):
        assert controller in text
    assert "North of England Commissioning Support Unit (0AR)" in text  # the processor
    assert "Purge by cryptographic erase (NIST SP 800-88 Rev. 1)" in text
    assert destroyed.manifest_sha256 in text.replace(" ", "")
    assert destroyed.manifest["apps"]["datasets"]["programme_keys"][0]["id"] in text.replace(
        " ", ""
    )
    assert "csu-admin" in text
    assert "automated verification step" in text and "No second person verified" in text
    assert "Extracts received (stored encrypted) 1 " in text


def test_a_standard_validator_reports_the_signature_intact_and_trusted(destroyed):
    pdf = bytes(destroyed.certificate.pdf)
    signature = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0]
    status = validate_pdf_signature(signature, portal_context())
    assert status.intact and status.valid and status.trusted
    assert status.coverage.name == "ENTIRE_FILE"
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"  # PAdES


def test_the_portal_says_its_certificate_is_valid_and_whose_it_is(destroyed):
    result = selectors.certificate_verify(data=bytes(destroyed.certificate.pdf))
    assert result.valid and result.genuine and result.unmodified
    assert (result.serial, result.programme, result.run) == (
        destroyed.certificate.serial,
        "testshire",
        destroyed.pk,
    )
    assert "PHM governance portal" in result.signed_by and result.reasons == []


def test_one_flipped_byte_breaks_the_signature(destroyed):
    tampered = flip_signed_byte(bytes(destroyed.certificate.pdf))
    signature = PdfFileReader(io.BytesIO(tampered)).embedded_signatures[0]
    assert not validate_pdf_signature(signature, portal_context()).intact
    result = selectors.certificate_verify(data=tampered)
    assert not result.valid and not result.unmodified
    assert any("changed after it was signed" in r for r in result.reasons)


def test_a_certificate_signed_by_another_portals_key_is_not_genuine(destroyed, tmp_path):
    other = signing.new_identity("Another portal")
    unsigned = services.certificate_render(
        run=destroyed, serial=destroyed.certificate.serial, issued_at=destroyed.finished_at
    )
    forged = signing.sign_pdf(unsigned, other, reason="forged", location="elsewhere", name="x")
    signature = PdfFileReader(io.BytesIO(forged)).embedded_signatures[0]
    status = validate_pdf_signature(signature, portal_context())
    assert status.intact and not status.trusted
    result = selectors.certificate_verify(data=forged)
    assert not result.valid and not result.genuine
    assert any("not made with this portal's key" in r for r in result.reasons)


def test_bytes_added_after_signing_are_reported(destroyed):
    result = selectors.certificate_verify(data=bytes(destroyed.certificate.pdf) + b"\n% added\n")
    assert not result.valid and not result.unmodified


def test_a_file_that_is_not_a_pdf_is_refused_naming_the_file(db):
    with pytest.raises(InvalidInput, match="not a PDF") as refused:
        selectors.certificate_verify(data=b"hello")
    assert refused.value.field == "file" and refused.value.status_code == 400


def test_bytes_added_after_signing_name_no_programme(destroyed):
    result = selectors.certificate_verify(data=bytes(destroyed.certificate.pdf) + b"\n% added\n")
    assert result.genuine and not result.unmodified
    assert (result.serial, result.programme, result.run, result.signed_by) == (None,) * 4


def test_the_signing_key_is_kept_encrypted_and_never_in_the_database(settings, db):
    identity = services.signing_key_init()
    path = settings.PHM_SIGNING_P12_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(signing.SigningKeyMissing, match="cannot be opened"):
        signing.load_identity(path, b"wrong password")
    assert signing.load_identity(path, services.signing_password()).fingerprint == (
        identity.fingerprint
    )
    record = SigningCertificate.objects.get()
    assert "PRIVATE KEY" not in record.certificate_pem
    assert record.fingerprint == identity.fingerprint


def test_a_configured_password_protects_the_key_file(settings, db):
    settings.PHM_SIGNING_P12_PASSWORD = "a long configured passphrase"
    services.signing_key_init()
    signing.load_identity(settings.PHM_SIGNING_P12_FILE, b"a long configured passphrase")


def test_signing_key_init_refuses_to_overwrite_without_replace(db, capsys):
    call_command("signing_key", "init")
    assert "SHA-256 fingerprint" in capsys.readouterr().out
    with pytest.raises(CommandError, match="already exists"):
        call_command("signing_key", "init")
    call_command("signing_key", "init", "--replace")
    assert SigningCertificate.objects.count() == 2


def test_certificates_signed_with_a_replaced_key_still_verify(destroyed):
    services.signing_key_init(replace=True)
    assert selectors.certificate_verify(data=bytes(destroyed.certificate.pdf)).valid


def test_verify_certificate_command(destroyed, tmp_path, capsys):
    good = tmp_path / "good.pdf"
    good.write_bytes(bytes(destroyed.certificate.pdf))
    call_command("verify_certificate", str(good))
    out = capsys.readouterr().out
    assert "The certificate is valid." in out and destroyed.certificate.serial in out
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(flip_signed_byte(bytes(destroyed.certificate.pdf)))
    with pytest.raises(CommandError, match="NOT valid"):
        call_command("verify_certificate", str(bad))
    assert "Unmodified since signing: NO" in capsys.readouterr().out
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("verify_certificate", str(tmp_path / "missing.pdf"))


def test_one_certificate_per_run(destroyed):
    assert Certificate.objects.filter(run=destroyed).count() == 1


def page_endings(document) -> list[str]:
    """Return the element (tag) that ends the body of every page but the last."""
    from weasyprint.formatting_structure import boxes

    endings = []
    for page in document.pages[:-1]:
        texts = [
            box
            for box in page._page_box.descendants()
            if isinstance(box, boxes.TextBox) and not isinstance(box, boxes.MarginBox)
        ]
        body = [box for box in texts if box.element_tag is not None]  # None: the footer
        endings.append(f"{body[-1].element_tag}: {body[-1].text}" if body else "")
    return endings


def test_no_certificate_page_ends_with_a_heading(destroyed):
    from governance.models import Participation
    from tests.factories import OrganisationFactory, ParticipationFactory

    # More controllers push everything after them down, one line at a time, so that each
    # heading in turn reaches the foot of a page: it must then go to the next page.
    pages = set()
    for count in range(48):
        if count:
            ParticipationFactory(
                programme=destroyed.programme,
                organisation=OrganisationFactory(name=f"Joint controller {count}"),
                role=Participation.Role.JOINT_CONTROLLER,
            )
        document = services.certificate_document(
            run=destroyed, serial=destroyed.certificate.serial, issued_at=destroyed.finished_at
        )
        endings = page_endings(document)
        pages.add(len(endings) + 1)
        orphans = [e for e in endings if e.split(":")[0] in ("h1", "h2", "h3", "caption")]
        assert orphans == [], f"{count} extra controllers: a page ends with {orphans}"
    assert len(pages) > 1  # the range did move content across a page boundary
