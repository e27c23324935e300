"""The catalogue of lawful bases and conditions, with their official wording.

Loaded by migration 0002; a change here needs a new data migration that calls
`legal_bases_sync` again.
"""

from __future__ import annotations

_ART6 = {
    "a": (
        "Consent",
        "the data subject has given consent to the processing of his or her personal data for one or more specific purposes;",
    ),
    "b": (
        "Contract",
        "processing is necessary for the performance of a contract to which the data subject is party or in order to take steps at the request of the data subject prior to entering into a contract;",
    ),
    "c": (
        "Legal obligation",
        "processing is necessary for compliance with a legal obligation to which the controller is subject;",
    ),
    "d": (
        "Vital interests",
        "processing is necessary in order to protect the vital interests of the data subject or of another natural person;",
    ),
    "e": (
        "Public task",
        "processing is necessary for the performance of a task carried out in the public interest or in the exercise of official authority vested in the controller;",
    ),
    "f": (
        "Legitimate interests",
        "processing is necessary for the purposes of the legitimate interests pursued by the controller or by a third party, except where such interests are overridden by the interests or fundamental rights and freedoms of the data subject which require protection of personal data, in particular where the data subject is a child.",
    ),
}

_ART9 = {
    "a": (
        "Explicit consent",
        "the data subject has given explicit consent to the processing of those personal data for one or more specified purposes, except where domestic law provides that the prohibition referred to in paragraph 1 may not be lifted by the data subject;",
    ),
    "b": (
        "Employment, social security and social protection",
        "processing is necessary for the purposes of carrying out the obligations and exercising specific rights of the controller or of the data subject in the field of employment and social security and social protection law in so far as it is authorised by domestic law or a collective agreement pursuant to domestic law providing for appropriate safeguards for the fundamental rights and the interests of the data subject;",
    ),
    "c": (
        "Vital interests",
        "processing is necessary to protect the vital interests of the data subject or of another natural person where the data subject is physically or legally incapable of giving consent;",
    ),
    "d": (
        "Not-for-profit bodies",
        "processing is carried out in the course of its legitimate activities with appropriate safeguards by a foundation, association or any other not-for-profit body with a political, philosophical, religious or trade union aim and on condition that the processing relates solely to the members or to former members of the body or to persons who have regular contact with it in connection with its purposes and that the personal data are not disclosed outside that body without the consent of the data subjects;",
    ),
    "e": (
        "Made public by the data subject",
        "processing relates to personal data which are manifestly made public by the data subject;",
    ),
    "f": (
        "Legal claims or judicial acts",
        "processing is necessary for the establishment, exercise or defence of legal claims or whenever courts are acting in their judicial capacity;",
    ),
    "g": (
        "Reasons of substantial public interest",
        "processing is necessary for reasons of substantial public interest, on the basis of domestic law which shall be proportionate to the aim pursued, respect the essence of the right to data protection and provide for suitable and specific measures to safeguard the fundamental rights and the interests of the data subject;",
    ),
    "h": (
        "Health or social care",
        "processing is necessary for the purposes of preventive or occupational medicine, for the assessment of the working capacity of the employee, medical diagnosis, the provision of health or social care or treatment or the management of health or social care systems and services on the basis of domestic law or pursuant to contract with a health professional and subject to the conditions and safeguards referred to in paragraph 3;",
    ),
    "i": (
        "Public health",
        "processing is necessary for reasons of public interest in the area of public health, such as protecting against serious cross-border threats to health or ensuring high standards of quality and safety of health care and of medicinal products or medical devices, on the basis of domestic law which provides for suitable and specific measures to safeguard the rights and freedoms of the data subject, in particular professional secrecy;",
    ),
    "j": (
        "Archiving, research and statistics",
        "processing is necessary for archiving purposes in the public interest, scientific or historical research purposes or statistical purposes in accordance with Article 89(1) (as supplemented by section 19 of the 2018 Act) based on domestic law which shall be proportionate to the aim pursued, respect the essence of the right to data protection and provide for suitable and specific measures to safeguard the fundamental rights and the interests of the data subject.",
    ),
}

LEGAL_BASES: list[dict[str, str]] = [
    *(
        {
            "code": f"UK-GDPR-6-1-{letter}",
            "regime": "uk_gdpr_6",
            "article": f"6(1)({letter})",
            "title": title,
            "text": text,
        }
        for letter, (title, text) in _ART6.items()
    ),
    *(
        {
            "code": f"UK-GDPR-9-2-{letter}",
            "regime": "uk_gdpr_9",
            "article": f"9(2)({letter})",
            "title": title,
            "text": text,
        }
        for letter, (title, text) in _ART9.items()
    ),
    {
        "code": "CLDC-IMPLIED-CONSENT",
        "regime": "cldc",
        "article": "Implied consent",
        "title": "Common law duty of confidentiality: implied consent for individual care",
        "text": "Confidential patient information may be shared without breaching the common law duty of confidentiality where the patient can reasonably expect it to be used for their individual care.",
    },
    {
        "code": "CLDC-S251",
        "regime": "cldc",
        "article": "Section 251 support",
        "title": "Common law duty of confidentiality set aside by section 251 support",
        "text": "Confidential patient information may be used without consent where the use has support under section 251 of the National Health Service Act 2006 and the Health Service (Control of Patient Information) Regulations 2002.",
    },
    {
        "code": "CLDC-NOT-ENGAGED",
        "regime": "cldc",
        "article": "Not engaged",
        "title": "Common law duty of confidentiality not engaged: de-identified data",
        "text": "The duty of confidence is not engaged where the information used does not identify the patient, having been de-identified (pseudonymised) before it is shared.",
    },
    {
        "code": "DPA2018-SCH1-P1-1",
        "regime": "dpa2018_sch1",
        "article": "Schedule 1 Part 1 paragraph 1",
        "title": "Employment, social security and social protection",
        "text": "The processing is necessary for the purposes of performing or exercising obligations or rights which are imposed or conferred by law on the controller or the data subject in connection with employment, social security or social protection.",
    },
    {
        "code": "DPA2018-SCH1-P1-2",
        "regime": "dpa2018_sch1",
        "article": "Schedule 1 Part 1 paragraph 2",
        "title": "Health or social care purposes",
        "text": "The processing is necessary for health or social care purposes: preventive or occupational medicine, the assessment of the working capacity of an employee, medical diagnosis, the provision of health care or treatment, the provision of social care, or the management of health care systems or services or social care systems or services.",
    },
    {
        "code": "DPA2018-SCH1-P1-3",
        "regime": "dpa2018_sch1",
        "article": "Schedule 1 Part 1 paragraph 3",
        "title": "Public health",
        "text": "The processing is necessary for reasons of public interest in the area of public health, and is carried out by or under the responsibility of a health professional, or by another person who in the circumstances owes a duty of confidentiality under an enactment or rule of law.",
    },
    {
        "code": "DPA2018-SCH1-P1-4",
        "regime": "dpa2018_sch1",
        "article": "Schedule 1 Part 1 paragraph 4",
        "title": "Research etc",
        "text": "The processing is necessary for archiving purposes, scientific or historical research purposes or statistical purposes, is carried out in accordance with Article 89(1) of the UK GDPR (as supplemented by section 19), and is in the public interest.",
    },
    {
        "code": "DPA2018-SCH1-P2-6",
        "regime": "dpa2018_sch1",
        "article": "Schedule 1 Part 2 paragraph 6",
        "title": "Statutory and government purposes",
        "text": "The processing is necessary for the exercise of a function conferred on a person by an enactment or rule of law, and is necessary for reasons of substantial public interest.",
    },
    {
        "code": "COPI-REG-3",
        "regime": "copi",
        "article": "Regulation 3",
        "title": "Communicable disease and other risks to public health",
        "text": "Confidential patient information may be processed with a view to diagnosing, recognising trends in, controlling and preventing, monitoring and managing communicable diseases and other risks to public health, as set out in regulation 3 of the Health Service (Control of Patient Information) Regulations 2002.",
    },
]


def legal_bases_sync(model) -> None:
    """Create or update every catalogue entry (model: LegalBasis, possibly a migration's)."""
    for entry in LEGAL_BASES:
        model.objects.update_or_create(code=entry["code"], defaults=entry)
