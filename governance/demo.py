"""The five demo regions, each from its notice in ../shared/seeds/.

ODS codes of the national and regional bodies follow the real pattern; the GP
practices, the primary care network and their postcodes are made up.
"""

from __future__ import annotations

NECS = "0AR"
OPTUM = "OPTUMUK"
NHS_DIGITAL = "X26"

ORGANISATIONS: list[dict] = [
    {
        "ods_code": NECS,
        "name": "North of England Commissioning Support Unit",
        "short_name": "NECS",
        "kind": "csu",
        "part_of": "NHS England",
        "website": "https://www.necsu.nhs.uk/",
        "dpo_name": "NECS Data Protection Officer",
        "dpo_email": "dpo@necs.example.nhs.uk",
        "ico_registration_number": "Z2950066",
    },
    {
        "ods_code": OPTUM,
        "name": "Optum Health Solutions UK",
        "short_name": "Optum",
        "kind": "commercial_processor",
        "website": "https://www.optum.co.uk/",
        "dpo_name": "Optum UK Data Protection Officer",
        "dpo_email": "dpo@optum.example.co.uk",
        "ico_registration_number": "ZA170707",
    },
    {
        "ods_code": NHS_DIGITAL,
        "name": "NHS Digital",
        "kind": "national_body",
        "website": "https://digital.nhs.uk/",
    },
    {
        "ods_code": "E10000003",
        "name": "Cambridgeshire County Council",
        "short_name": "the Local Authority",
        "kind": "local_authority",
        "postcode": "CB3 0AP",
    },
    {"ods_code": "06H", "name": "NHS Cambridgeshire and Peterborough CCG", "kind": "ccg"},
    {"ods_code": "15M", "name": "NHS Derby and Derbyshire CCG", "kind": "ccg"},
    {
        "ods_code": "15N",
        "name": "NHS Devon Clinical Commissioning Group",
        "short_name": "NHS Devon CCG",
        "kind": "ccg",
        "postcode": "EX2 5DW",
        "dpo_name": "NHS Devon CCG Data Protection Officer",
        "dpo_email": "dpo@devonccg.example.nhs.uk",
    },
    {
        "ods_code": "03H",
        "name": "North East Lincolnshire Clinical Commissioning Group",
        "short_name": "NEL CCG",
        "kind": "ccg",
        "postcode": "DN31 1HU",
        "dpo_name": "NEL CCG Data Protection Officer",
        "dpo_email": "dpo@nelccg.example.nhs.uk",
        "ico_registration_number": "Z3526425",
    },
    {
        "ods_code": "U81901",
        "name": "Grimsby and Cleethorpes Primary Care Network",
        "short_name": "your local Primary Care Network",
        "kind": "pcn",
        "postcode": "DN32 9AA",
    },
]


def _practice(ods: str, name: str, postcode: str) -> dict:
    return {
        "ods_code": ods,
        "name": name,
        "kind": "gp_practice",
        "postcode": postcode,
        "dpo_name": f"{name} Data Protection Officer",
        "dpo_email": f"dpo.{ods.lower()}@practice.example.nhs.uk",
    }


PRACTICES: dict[str, list[dict]] = {
    "cambridgeshire-peterborough": [
        _practice("D81901", "Riverside Surgery", "CB1 2AB"),
        _practice("D81902", "Fenland Medical Centre", "PE13 1AA"),
        _practice("D81903", "Cathedral View Practice", "PE1 1XS"),
    ],
    "derby-derbyshire": [
        _practice("C81901", "Peak View Surgery", "DE4 3AA"),
        _practice("C81902", "Trent Valley Practice", "DE1 1AA"),
    ],
    "generic-20-week": [
        _practice("P99901", "Meadow Lane Practice", "YO1 7HH"),
        _practice("P99902", "Old Mill Health Centre", "YO10 3BP"),
    ],
    "devon": [
        _practice("L83901", "Exe Estuary Surgery", "EX1 1AA"),
        _practice("L83902", "Moorland Medical Practice", "TQ13 7AA"),
        _practice("L83903", "Tamar Bridge Surgery", "PL1 2AA"),
    ],
    "north-east-lincolnshire": [
        _practice("B81901", "Freshney Green Surgery", "DN34 4AA"),
        _practice("B81902", "Cleethorpes Seafront Practice", "DN35 8AA"),
    ],
}

# OVERSEAS_NOTE: only the North East Lincolnshire notice states it ("Data is not
# transferred overseas"); the other four say nothing either way. A notice cannot be
# published without saying it (UK GDPR Art 13(1)(f)), so the demo records the same
# answer for them: the processors are the same (NECS, Optum) or an NHS CCG alone.
_FIVE_PURPOSES = [
    "improving the quality and standards of care provided",
    "research into the development of new treatments",
    "preventing illness and diseases",
    "monitoring safety",
    "planning services",
]

# Each programme: its fields, legal bases, how many weeks ago it started, and who takes part.
# "PRACTICES" stands for every demo practice of the region.
PROGRAMMES: list[dict] = [
    {
        "fields": {
            "slug": "cambridgeshire-peterborough",
            "name": "Cambridgeshire and Peterborough Population Health Management programme",
            "region": "Cambridgeshire and Peterborough",
            "length_weeks": 22,
            "purposes": [
                "Identifying groups of patients that could benefit from direct interventions"
            ]
            + _FIVE_PURPOSES,
            "type1_opt_out_contact": "practice",
            "overseas_transfer": "none",  # see OVERSEAS_NOTE
        },
        "legal_bases": ["UK-GDPR-6-1-e", "UK-GDPR-9-2-h"],
        "started_weeks_ago": 6,
        "participants": [
            ("PRACTICES", "controller", ["provide_data", "re_identify"], "", True),
            (NECS, "processor", ["pseudonymise"], "", True),
            (
                OPTUM,
                "processor",
                ["link", "combine", "analyse"],
                "Contracted by NHS England.",
                False,
            ),
            (
                NHS_DIGITAL,
                "data_provider",
                ["provide_data"],
                "NHS Digital already holds information about other health and care attendances.",
                True,
            ),
            ("E10000003", "data_provider", ["provide_data"], "Social care data.", True),
        ],
    },
    {
        "fields": {
            "slug": "derby-derbyshire",
            "name": "Derby and Derbyshire Population Health Management pilot",
            "region": "Derby and Derbyshire",
            "partnership": "NHS Derby and Derbyshire CCG (a time-limited pilot across named practices)",
            "length_weeks": 22,
            "purposes": list(_FIVE_PURPOSES),
            "type1_opt_out_contact": "practice",
            "overseas_transfer": "none",  # see OVERSEAS_NOTE
        },
        "legal_bases": ["UK-GDPR-6-1-e", "UK-GDPR-9-2-h"],
        "started_weeks_ago": 4,
        "participants": [
            ("PRACTICES", "controller", ["provide_data", "review", "re_identify"], "", True),
            (NECS, "processor", ["link"], "", True),
            (OPTUM, "sub_processor", ["support"], "Works in partnership with NECS.", False),
        ],
    },
    {
        "fields": {
            "slug": "generic-20-week",
            "name": "Population Health Management programme (20 weeks)",
            "region": "Your area",
            "length_weeks": 20,
            "purposes": list(_FIVE_PURPOSES),
            "type1_opt_out_contact": "practice",
            "overseas_transfer": "none",  # see OVERSEAS_NOTE
        },
        "legal_bases": ["UK-GDPR-6-1-e", "UK-GDPR-9-2-h"],
        "started_weeks_ago": 2,
        "participants": [
            ("PRACTICES", "controller", ["provide_data", "re_identify"], "", True),
            (NECS, "processor", ["link", "review"], "", True),
            (OPTUM, "sub_processor", ["support"], "Used by the Commissioning Support Unit.", False),
        ],
    },
    {
        "fields": {
            "slug": "devon",
            "name": "Devon Population Health Management project",
            "region": "Devon",
            "population": 1_200_000,
            "length_weeks": None,
            "purposes": list(_FIVE_PURPOSES),
            "type1_opt_out_contact": "practice_dpo",
            "overseas_transfer": "none",  # see OVERSEAS_NOTE
        },
        "legal_bases": ["UK-GDPR-6-1-e", "UK-GDPR-9-2-h"],
        "started_weeks_ago": 8,
        "participants": [
            ("PRACTICES", "controller", ["provide_data", "review", "re_identify"], "", True),
            (
                "15N",
                "processor",
                ["link"],
                "The NHS organisation responsible for planning, commissioning (or buying) and "
                "developing healthcare services for the people who live in Devon.",
                True,
            ),
        ],
    },
    {
        "fields": {
            "slug": "north-east-lincolnshire",
            "name": "North East Lincolnshire Population Health Management project",
            "region": "North East Lincolnshire",
            "partnership": "Humber Coast and Vale Health and Care Partnership",
            "length_weeks": 20,
            "purposes": list(_FIVE_PURPOSES),
            "overseas_transfer": "none",
            "type1_opt_out_contact": "practice",
        },
        "legal_bases": ["UK-GDPR-6-1-e", "UK-GDPR-9-2-h"],
        "started_weeks_ago": 10,
        "participants": [
            ("03H", "controller", [], "", True, "lead"),
            ("U81901", "joint_controller", [], "", True),
            (NECS, "processor", ["link"], "Destroys its data at the end of the 20 weeks.", True),
            (
                OPTUM,
                "processor",
                ["support"],
                "Deletes its data at the end and certifies it.",
                False,
            ),
            ("03H", "processor", [], "No identifiable data will be processed by the CCG.", False),
            (NECS, "recipient", [], "", True),
            (OPTUM, "recipient", [], "", False),
            ("PRACTICES", "recipient", ["provide_data", "review", "re_identify"], "Your GP.", True),
        ],
    },
]

SLUGS = [p["fields"]["slug"] for p in PROGRAMMES]

# --- data flows, from the notices ----------------------------------------------------
# Each: (programme, source, destination, categories, identifiability, outcome, purpose).
# "PRACTICES" stands for every demo practice of the region (one flow each). Outcomes:
# "approved" (csu-admin drafts and submits, csu-admin-2 approves: four eyes), "submitted"
# (waiting in the queue), "rejected" (with the reason below), "draft".
LA = "E10000003"
DEVON_CCG = "15N"
NEL_CCG = "03H"
REGION_CODES = {
    "cambridgeshire-peterborough": "CP",
    "derby-derbyshire": "DD",
    "generic-20-week": "G20",
    "devon": "DEV",
    "north-east-lincolnshire": "NEL",
}
FLOW_LEGAL_BASES = ["UK-GDPR-6-1-e", "UK-GDPR-9-2-h"]
REJECTION_REASON = (
    "Optum receives pseudonymised data only (DPIA section 4.2); NECS must pseudonymise "
    "before sending."
)
_GP_TO_PSEUDONYMISER = "Send the practice's GP records to NECS, who pseudonymise them."
_BACK_TO_PRACTICE = (
    "Return the pseudonymised records of patients the analysis flags, so that the practice "
    "can use the code to identify its own patients and offer them care."
)
FLOWS: list[tuple[str, str, str, list[str], str, str, str]] = [
    # Cambridgeshire and Peterborough: GP, national and social care data go to NECS, who
    # pseudonymise it for Optum; Optum sends flagged patients back to their practice.
    ("cambridgeshire-peterborough", "PRACTICES", NECS, ["gp"], "identifiable", "approved", _GP_TO_PSEUDONYMISER),
    ("cambridgeshire-peterborough", NHS_DIGITAL, NECS, ["national"], "identifiable", "approved",
     "Send the information NHS Digital holds about other health and care attendances."),
    ("cambridgeshire-peterborough", LA, NECS, ["social_care"], "identifiable", "submitted",
     "Send the Local Authority's social care records."),
    ("cambridgeshire-peterborough", NECS, OPTUM, ["gp", "social_care", "national"], "pseudonymised", "approved",
     "Send the pseudonymised data to Optum to link, combine and analyse."),
    ("cambridgeshire-peterborough", OPTUM, "PRACTICES", ["gp", "social_care", "national"], "pseudonymised", "approved",
     _BACK_TO_PRACTICE),
    # Derby and Derbyshire: practices to NECS, who link it and work with Optum.
    ("derby-derbyshire", "PRACTICES", NECS, ["gp"], "identifiable", "approved",
     "Send the practice's GP records to NECS, who link all the information together."),
    ("derby-derbyshire", NECS, OPTUM, ["gp"], "pseudonymised", "approved",
     "Let Optum help NECS with the linked, pseudonymised data."),
    ("derby-derbyshire", NECS, OPTUM, ["gp"], "identifiable", "rejected",
     "Let Optum help NECS with the linked data."),
    # The generic 20-week notice: practices to the CSU, which uses Optum.
    ("generic-20-week", "PRACTICES", NECS, ["gp"], "identifiable", "approved",
     "Send the practice's GP records to the Commissioning Support Unit to link."),
    ("generic-20-week", NECS, OPTUM, ["gp"], "pseudonymised", "submitted",
     "Let Optum help the Commissioning Support Unit with the pseudonymised data."),
    # Devon: practices to NHS Devon CCG, which links the data; no commercial processor.
    ("devon", "PRACTICES", DEVON_CCG, ["gp"], "identifiable", "approved",
     "Send the practice's GP records to NHS Devon CCG, who link all the information together."),
    ("devon", DEVON_CCG, PRACTICES["devon"][0]["ods_code"], ["gp"], "pseudonymised", "draft",
     "Return the linked information so the practice can review it."),
    # North East Lincolnshire: practices to NECS, NECS to Optum, and back to the practices;
    # the CCG sees no identifiable data.
    ("north-east-lincolnshire", "PRACTICES", NECS, ["gp"], "identifiable", "approved",
     "Send the practice's GP records to NECS, who link all the information together."),
    ("north-east-lincolnshire", NECS, OPTUM, ["gp"], "pseudonymised", "approved",
     "Let Optum help NECS with the pseudonymised data."),
    ("north-east-lincolnshire", OPTUM, "PRACTICES", ["gp"], "pseudonymised", "approved",
     _BACK_TO_PRACTICE),
    ("north-east-lincolnshire", NECS, NEL_CCG, ["gp"], "anonymised", "submitted",
     "Give the CCG anonymised figures to plan services (no identifiable data)."),
]  # fmt: skip


def dpia_reference(slug: str) -> str:
    return f"DPIA-PHM-{REGION_CODES[slug]}-2026-01"


def dsa_reference(slug: str, source: str, destination: str) -> str:
    return f"DSA-{REGION_CODES[slug]}-{source}-{destination}"


def expanded_flows() -> list[tuple[str, str, str, list[str], str, str, str]]:
    """Return the demo flows with "PRACTICES" replaced by each practice of the region."""
    out = []
    for slug, source, destination, categories, identifiability, outcome, purpose in FLOWS:
        practices = [p["ods_code"] for p in PRACTICES[slug]]
        for s in practices if source == "PRACTICES" else [source]:
            for d in practices if destination == "PRACTICES" else [destination]:
                out.append((slug, s, d, categories, identifiability, outcome, purpose))
    return out


# --- assurance (issue 17): what the demo flows stand on ----------------------------------
# Every organisation: DSPT Standards Met or Exceeded for the current assessment year, and an
# ICO registration in date for this many days from the day the demo is loaded. The numbers
# marked synthetic are made up (the real bodies' numbers are not needed for a demo).
DSPT_EXCEEDED = {NECS, OPTUM, NHS_DIGITAL}
ICO_NUMBERS = {  # synthetic, for the organisations the seeds give none
    NHS_DIGITAL: "ZA900026",
    LA: "ZA900003",
    "06H": "ZA900006",
    "15M": "ZA900015",
    DEVON_CCG: "ZA900016",
    "U81901": "ZA981901",
}
ICO_EXPIRES_IN_DAYS = 240  # the practices' and most bodies' fee renews in about 8 months
ICO_EXPIRES_IN_DAYS_OF = {NECS: 300, OPTUM: 330, NHS_DIGITAL: 200}


def ico_number(ods_code: str) -> str:
    """Return the organisation's ICO registration number: the seed's, or a synthetic one."""
    return ICO_NUMBERS.get(ods_code) or f"ZB{ods_code[-6:]:0>6}"


# The signatories (SIRO or Caldicott Guardian): synthetic people. Each region's signs for its
# own organisations (the practices, and the CCG, PCN or council of the region); the shared
# bodies have their own.
SIGNATORIES: list[tuple[str, str, str, str | list[str]]] = [
    ("signatory-necs", "Morgan", "Hale", [NECS]),
    ("signatory-optum", "Priya", "Castell", [OPTUM]),
    ("signatory-nhs-digital", "Owen", "Marsh", [NHS_DIGITAL]),
    ("signatory-cambridgeshire-peterborough", "Ruth", "Ellery", "cambridgeshire-peterborough"),
    ("signatory-derby-derbyshire", "Daniel", "Okafor", "derby-derbyshire"),
    ("signatory-generic-20-week", "Helen", "Brook", "generic-20-week"),
    ("signatory-devon", "Tamsin", "Penrose", "devon"),
    ("signatory-north-east-lincolnshire", "Imran", "Sheard", "north-east-lincolnshire"),
]
REGION_BODIES = {
    "cambridgeshire-peterborough": [LA],
    "derby-derbyshire": [],
    "generic-20-week": [],
    "devon": [DEVON_CCG],
    "north-east-lincolnshire": [NEL_CCG, "U81901"],
}


def signatory_organisations(slug_or_codes: str | list[str]) -> list[str]:
    """Return the ODS codes a demo signatory signs for."""
    if isinstance(slug_or_codes, list):
        return slug_or_codes
    return [p["ods_code"] for p in PRACTICES[slug_or_codes]] + REGION_BODIES[slug_or_codes]


DPIA_RISKS = [
    {
        "description": "Identifiable GP records are seen by people who do not need them.",
        "likelihood": "possible",
        "severity": "severe",
        "measure": "Only the pseudonymising processor receives identifiable data; access by "
        "role, two-factor sign-in and an audit log of every action.",
    },
    {
        "description": "A patient is re-identified from the pseudonymised data.",
        "likelihood": "remote",
        "severity": "significant",
        "measure": "Keyed pseudonyms under the programme's own key; dates of birth and "
        "postcodes generalised; only the patient's own practice re-identifies.",
    },
    {
        "description": "Data is kept after the programme ends.",
        "likelihood": "remote",
        "severity": "significant",
        "measure": "Crypto-shredding of every extract and key at the end, with a destruction "
        "certificate sent to every controller.",
    },
]
DPIA_REVIEW_IN_DAYS = 300
# One agreement runs out soon, so the watch has a reminder to send (it is due in 30 days).
AGREEMENT_EXPIRES_IN_DAYS = 365
AGREEMENT_EXPIRES_SOON = "generic-20-week"
AGREEMENT_EXPIRES_SOON_IN_DAYS = 21
AGREEMENT_LEGAL_BASES = ["UK-GDPR-6-1-e", "UK-GDPR-9-2-h", "DPA2018-SCH1-P1-2"]
# One flow lapses: Derby's NECS -> Optum pseudonymised data stood on its own sub-processing
# agreement, which ran out yesterday; the watch that load_demo runs suspends the flow.
LAPSED_FLOW = ("derby-derbyshire", NECS, OPTUM, "pseudonymised")
LAPSED_AGREEMENT_TITLE = "NECS and Optum sub-processing agreement"


def dpia_title(slug: str) -> str:
    return f"DPIA of the {REGION_CODES[slug]} population health management programme"


def agreement_title(slug: str) -> str:
    return f"{REGION_CODES[slug]} population health management data sharing agreement"
