"""Each demo region's published notice says every fact of its notice in ../shared/seeds/.

Each fact is looked for in the public web page AND in the text of its PDF; each
region also lists what its seed notice rules out, which must not be said.
"""

from __future__ import annotations

import html
import io
import re

import pytest
from django.core.management import call_command
from pypdf import PdfReader

from notices.models import NoticeVersion

COMMON = [
    # names and NHS numbers replaced by a code, and who may use the code
    "like your name or NHS number, is removed and replaced with a code",
    "Only your GP practice can use the code to find out who you are",
    # rights, and the ICO
    "to be informed about how your information is used",
    "of access to the information held about you",
    "to have information corrected if it is wrong",
    "not to be subject to decisions made solely by automated means",
    "to be told of a data breach",
    "https://ico.org.uk/make-a-complaint/",
    "0303 123 1113",
    # the purposes of the seeds
    "improving the quality and standards of care provided",
    "research into the development of new treatments",
    "preventing illness and diseases",
    "monitoring safety",
    "planning services",
    # the legal bases with their official wording
    "UK GDPR Article 6(1)(e)",
    "processing is necessary for the performance of a task carried out in the public interest "
    "or in the exercise of official authority vested in the controller",
    # destruction of data and keys, with a certificate to the controllers
    "is securely destroyed",
    "encryption keys",
    "A data destruction certificate",
    "sent to every data controller",
]

NATIONAL_OPT_OUT = [
    "national data opt-out",
    "https://www.nhs.uk/your-nhs-data-matters/",
    "0300 3035678",
    "National data opt-outs are applied to this programme",
    "https://www.nhs.uk/your-nhs-data-matters/where-your-choice-does-not-apply/",
]

REGIONS = {
    "cambridgeshire-peterborough": {
        "says": [
            "North of England Commissioning Support Unit (NECS), part of NHS England",
            "will de-identify (pseudonymise) the data",
            "https://www.necsu.nhs.uk/",
            "Optum Health Solutions UK (Optum)",
            "will link the information together, combine the data and analyse the data",
            "Contracted by NHS England",
            "https://www.optum.co.uk/",
            # (approved data flows may add categories: each is checked on its own)
            "NHS Digital:",
            "national data sets",
            "already holds information about other health and care attendances",
            "Cambridgeshire County Council, the local authority:",
            "social care records",
            "Identifying groups of patients that could benefit from direct interventions",
            "The programme runs for 22 weeks",
            "all the data held for it by NECS and Optum is securely destroyed",
            "Type 1 opt-out",
            "Ask your GP practice",
            "in this programme or any other it takes part in",
            *NATIONAL_OPT_OUT,
        ],
        "never": ["20 weeks", "has not been stated"],
    },
    "derby-derbyshire": {
        "says": [
            "North of England Commissioning Support Unit (NECS), part of NHS England",
            "will link the information together",
            "Optum Health Solutions UK (Optum), (sub-processor)".replace(", (", " ("),
            "will help with this work",
            "Works in partnership with NECS",
            "The programme runs for 22 weeks",
            "all the data held for it by NECS and Optum is securely destroyed",
            "You also have the right to complain to the Information Commissioner's Office (ICO)",
            *NATIONAL_OPT_OUT,
        ],
        "never": ["20 weeks", "has not been stated"],
    },
    "generic-20-week": {
        "says": [
            "North of England Commissioning Support Unit (NECS)",
            "will link the information together and review the information and decide who might need additional support",
            "Optum Health Solutions UK (Optum) (sub-processor): will help with this work",
            "Used by the Commissioning Support Unit",
            "The programme runs for 20 weeks",
            "is securely destroyed",
            "You have the right to object to your information being used in this way",
        ],
        "never": ["22 weeks", "has not been stated"],
    },
    "devon": {
        "says": [
            "NHS Devon Clinical Commissioning Group (NHS Devon CCG) (processor): will link the information together",
            "The NHS organisation responsible for planning, commissioning (or buying) and developing healthcare services",
            "the 1.2 million people who live in Devon",
            "The length of the programme has not been stated",
            "contact your GP practice's Data Protection Officer in the first instance",
            "dpo.l83901@practice.example.nhs.uk",
            "all the data held for it by NHS Devon CCG is securely destroyed",
            "You also have the right to complain to the Information Commissioner's Office (ICO)",
        ],
        # Devon names no commercial processor, and states no length.
        "never": ["Optum", "commercial", "20 weeks", "22 weeks", "runs for"],
    },
    "north-east-lincolnshire": {
        "says": [
            "North East Lincolnshire Clinical Commissioning Group (NEL CCG)",
            "Grimsby and Cleethorpes Primary Care Network (your local Primary Care Network) (joint controller)",
            "Humber Coast and Vale Health and Care Partnership",
            "North of England Commissioning Support Unit (NECS), part of NHS England (processor)",
            "Optum Health Solutions UK (Optum) (processor)",
            "No identifiable data will be processed by the CCG",
            "UK GDPR Article 9(2)(h)",
            "the provision of health or social care or treatment or the management of health or "
            "social care systems and services",
            "Data is not transferred overseas",
            "The programme runs for 20 weeks",
            "the dataset is deleted together with the encryption keys",
            "Your GP practice (recipient)",
            "to ask for the use of your information to be restricted",
            "to object to your information being used",
            "Ask your GP practice",
        ],
        # NEL's notice says data is not transferred overseas.
        "never": ["transferred outside the UK under", "adequacy regulations", "22 weeks"],
    },
}


INLINE = re.compile(r"</?(strong|em|a|span)\b[^>]*>")


def _text(s: str) -> str:
    return " ".join(s.replace("\u00ad", "").split())


def _pdf_text(reader: PdfReader) -> str:
    """Return the PDF's words, less the artefacts of extraction: list bullets placed apart,
    and long web addresses that wrap after a hyphen or slash."""
    raw = "\n".join(p.extract_text() for p in reader.pages)
    raw = re.sub(r"^\s*•\s*$", "", raw, flags=re.M)
    raw = re.sub(r"(?<=[-/])\n(?=[a-z])", "", raw)
    return _text(raw.replace("• ", ""))


@pytest.fixture
def demo(db, settings, django_capture_on_commit_callbacks):
    settings.DEMO_PASSWORD = "a-demo-password"
    with django_capture_on_commit_callbacks(execute=True):
        call_command("load_demo", stdout=io.StringIO())


@pytest.mark.parametrize("slug", list(REGIONS))
def test_each_region_states_every_fact_of_its_seed_in_the_page_and_the_pdf(client, demo, slug):
    page = client.get(f"/notices/{slug}/")
    assert page.status_code == 200
    html_text = _text(html.unescape(re.sub(r"<[^>]+>", " ", INLINE.sub("", page.content.decode()))))
    pdf = client.get(f"/notices/{slug}/v1.pdf")
    reader = PdfReader(io.BytesIO(pdf.content))
    pdf_text = _pdf_text(reader)
    facts = COMMON + REGIONS[slug]["says"]
    missing_html = [f for f in facts if f not in html_text]
    missing_pdf = [f for f in facts if f not in pdf_text]
    assert (missing_html, missing_pdf) == ([], [])
    for contradiction in REGIONS[slug]["never"]:
        assert contradiction not in html_text, contradiction
        assert contradiction not in pdf_text, contradiction


def test_load_demo_publishes_each_region_once_as_its_dpo(demo):
    call_command("load_demo", stdout=io.StringIO())
    versions = NoticeVersion.objects.select_related("notice__programme", "published_by")
    assert versions.count() == 5
    for v in versions:
        assert v.status == "published" and v.number == 1
        assert v.published_by.username == f"dpo-{v.notice.programme.slug}"


def test_the_notice_says_what_kind_of_body_each_organisation_is(client, demo):
    page = _text(
        html.unescape(
            re.sub(
                r"<[^>]+>",
                "",
                client.get("/notices/cambridgeshire-peterborough/").content.decode(),
            )
        )
    )
    assert "Cambridgeshire County Council, the local authority" in page
    derby = _text(
        html.unescape(
            re.sub(r"<[^>]+>", "", client.get("/notices/derby-derbyshire/").content.decode())
        )
    )
    assert "Optum is a private company." in derby
