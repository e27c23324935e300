"""Write a programme's privacy notice from its governance data.

`programme_facts` reads everything a notice may say from the governance models
(participations, legal bases, approved data flows) into plain JSON; `sections`
writes the notice from those facts alone, in the small Markdown subset of
notices.render. Nothing here is typed per region: a region's notice says what its
data says, and a fact that is not recorded is not stated (the completeness check
names it instead).
"""

from __future__ import annotations

from collections import OrderedDict

from governance.models import DPIA, DataFlow, Organisation, Participation, Programme
from notices import law
from notices.render import md_escape, md_link

NATIONAL_OPT_OUT_URL = "https://www.nhs.uk/your-nhs-data-matters/"
NATIONAL_OPT_OUT_EXEMPTIONS_URL = (
    "https://www.nhs.uk/your-nhs-data-matters/where-your-choice-does-not-apply/"
)
NATIONAL_OPT_OUT_PHONE = "0300 3035678"
ICO_COMPLAINT_URL = "https://ico.org.uk/make-a-complaint/"
ICO_PHONE = "0303 123 1113"

# Where an organisation of each kind gets the information it sends.
KIND_CATEGORY = {
    Organisation.Kind.GP_PRACTICE: DataFlow.Category.GP,
    Organisation.Kind.NHS_TRUST: DataFlow.Category.HOSPITAL,
    Organisation.Kind.COMMUNITY_PROVIDER: DataFlow.Category.COMMUNITY,
    Organisation.Kind.LOCAL_AUTHORITY: DataFlow.Category.SOCIAL_CARE,
    Organisation.Kind.NATIONAL_BODY: DataFlow.Category.NATIONAL,
}
# What kind of body each organisation is, in the words patients know ("Cambridgeshire
# County Council, the local authority"). CCG rows are integrated care boards since 2022;
# a national body's name (NHS England, NHS Digital) says what it is.
KIND_NOUNS = {
    Organisation.Kind.PCN: "primary care network",
    Organisation.Kind.CCG: "integrated care board",
    Organisation.Kind.CSU: "commissioning support unit",
    Organisation.Kind.NHS_TRUST: "NHS trust",
    Organisation.Kind.COMMUNITY_PROVIDER: "community health provider",
    Organisation.Kind.LOCAL_AUTHORITY: "local authority",
    Organisation.Kind.COMMERCIAL_PROCESSOR: "private company",
}
# Names that say the kind in other words: a CCG's name says what an ICB is.
KIND_ALSO_SAID = {Organisation.Kind.CCG: ("clinical commissioning group", "ccg", "icb")}
CATEGORY_LABELS = dict(DataFlow.Category.choices)
RESPONSIBILITY_LABELS = dict(Participation.Responsibility.choices)
CONTROLLER_ROLES = {r.value for r in Participation.CONTROLLER_ROLES}
PROCESSOR_ROLES = {r.value for r in Participation.PROCESSOR_ROLES}

# (key, title) in reading order; "changes" comes first when there are any. The sections of
# ANNEX_SECTIONS hold the verbatim law: the page shows them behind an expanding section,
# the PDF in an annex, and the readability score leaves them out (a patient reads the rest
# first).
SECTION_TITLES: OrderedDict[str, str] = OrderedDict(
    [
        ("changes", "What has changed in this version"),
        ("about", "About this notice"),
        ("controllers", "Who is responsible for your information"),
        ("purposes", "Why your information is used"),
        ("legal_basis", "The law that allows this"),
        ("law", "The exact words of the law"),
        ("sources", "Where your information comes from"),
        ("pseudonymisation", "Your details are replaced by a code"),
        ("recipients", "Who gets your information"),
        ("overseas", "Transfers outside the UK"),
        ("retention", "How long your information is kept"),
        ("rights", "Your rights"),
        ("opt_out", "How to opt out"),
        ("complaints", "How to complain"),
    ]
)

ANNEX_SECTIONS = frozenset({"law"})


# --- facts -----------------------------------------------------------------------
def programme_facts(programme: Programme) -> dict:
    """Return everything the notice may say about the programme, as JSON-ready data."""
    participations = (
        programme.participations.select_related("organisation")
        .order_by("organisation__name", "role")
        .all()
    )
    participants = [
        {
            "ods": p.organisation.ods_code,
            "name": p.organisation.name,
            "short_name": p.organisation.short_name,
            "kind": p.organisation.kind,
            "part_of": p.organisation.part_of,
            "website": p.organisation.website,
            "dpo_name": p.organisation.dpo_name,
            "dpo_email": p.organisation.dpo_email,
            "role": p.role,
            "responsibilities": list(p.responsibilities),
            "description": p.description,
            "processes_identifiable_data": p.processes_identifiable_data,
            "is_lead": p.is_lead,
        }
        for p in participations
    ]
    return {
        "programme": {
            "slug": programme.slug,
            "name": programme.name,
            "region": programme.region,
            "partnership": programme.partnership,
            "population": programme.population,
            "start_date": programme.start_date.isoformat() if programme.start_date else None,
            "length_weeks": programme.length_weeks,
            "end_date": programme.end_date.isoformat() if programme.end_date else None,
            "purposes": list(programme.purposes),
            "overseas_transfer": programme.overseas_transfer,
            "overseas_transfer_detail": programme.overseas_transfer_detail,
            "type1_opt_out_applies": programme.type1_opt_out_applies,
            "type1_opt_out_contact": programme.type1_opt_out_contact,
            "national_opt_out_applies": programme.national_opt_out_applies,
            "national_opt_out_exemption": programme.national_opt_out_exemption,
        },
        "legal_bases": [
            {
                "code": b.code,
                "regime": b.regime,
                "regime_label": b.get_regime_display(),
                "article": b.article,
                "title": b.title,
                "text": b.text,
            }
            for b in programme.legal_bases.order_by("regime", "code")
        ],
        "participants": participants,
        "sources": _sources(programme, participants),
        "dpia": _dpia(programme),
    }


def _dpia(programme: Programme) -> dict | None:
    """Return when the programme's latest signed-off DPIA was signed off, or None if none was.

    One under review still stands (governance.assurance), so it still counts here.
    """
    from django.utils import timezone

    dpia = (
        DPIA.objects.filter(
            programme=programme,
            signed_off_at__isnull=False,
            status__in=[DPIA.Status.SIGNED_OFF, DPIA.Status.UNDER_REVIEW],
        )
        .order_by("-signed_off_at", "-pk")
        .first()
    )
    if dpia is None:
        return None
    return {"signed_off_on": timezone.localtime(dpia.signed_off_at).date().isoformat()}


def _sources(programme: Programme, participants: list[dict]) -> list[dict]:
    """Return who sends data into the programme and what kind of records.

    1. Participants that provide data (the data_provider role or the provide_data
       responsibility), and controllers whose kind holds records (a GP practice).
    2. The sources of the programme's approved data flows, with their categories, less
       those that only pass on what another flow brought them.
    """
    found: dict[str, dict] = {}
    for p in participants:
        category = KIND_CATEGORY.get(p["kind"])
        provides = p["role"] == "data_provider" or "provide_data" in p["responsibilities"]
        if not (provides or (p["role"] in CONTROLLER_ROLES and category)):
            continue
        entry = found.setdefault(
            p["ods"], {"ods": p["ods"], "name": p["name"], "kind": p["kind"], "categories": []}
        )
        if category and category not in entry["categories"]:
            entry["categories"].append(category)
        if p["description"] and p["role"] == "data_provider":
            entry["description"] = p["description"]
    flows = list(
        DataFlow.objects.filter(programme=programme, status=DataFlow.Status.APPROVED)
        .select_related("source", "destination")
        .order_by("source__name", "pk")
    )
    # An organisation that receives the programme's data and passes it on (NECS to Optum,
    # Optum back to the practices) is no source of records of its own: the patient reads of
    # it among the recipients, not among those that "already hold" their records.
    receivers = {flow.destination_id for flow in flows}
    for flow in flows:
        if flow.source_id in receivers and flow.source.ods_code not in found:
            continue
        entry = found.setdefault(
            flow.source.ods_code,
            {
                "ods": flow.source.ods_code,
                "name": flow.source.name,
                "kind": flow.source.kind,
                "categories": [],
            },
        )
        for category in flow.data_categories:
            if category in CATEGORY_LABELS and category not in entry["categories"]:
                entry["categories"].append(category)
    order = list(CATEGORY_LABELS)
    for entry in found.values():
        entry["categories"].sort(key=order.index)
    return sorted(found.values(), key=lambda e: (e["kind"] != "gp_practice", e["name"]))


# --- writing ---------------------------------------------------------------------
def _name(p: dict) -> str:
    """Return the organisation's full name, with the short name it goes by after."""
    name = md_escape(p["name"])
    if p["short_name"] and p["short_name"] != p["name"]:
        name += f" ({md_escape(p['short_name'])})"
    return name


def _kind(p: dict) -> str:
    """Return ", the <kind of body>" for the organisation, or "" when its name says so already."""
    noun = KIND_NOUNS.get(p["kind"])
    if noun is None:
        return ""
    names = f"{p['name']} {p.get('short_name') or ''}".lower()
    initials = "".join(w[0] for w in noun.split()).lower()
    said = [noun.lower(), *KIND_ALSO_SAID.get(p["kind"], ())]
    if any(w in names for w in said) or (len(initials) > 2 and initials in names.split()):
        return ""
    article = "a" if p["kind"] == Organisation.Kind.COMMERCIAL_PROCESSOR else "the"
    return f", {article} {noun}"


def _short(p: dict) -> str:
    return md_escape(p["short_name"] or p["name"])


def _join(items: list[str]) -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _lower_first(text: str) -> str:
    """Lower-case the first letter for use mid-sentence, unless it starts an acronym (GP)."""
    if len(text) > 1 and text[1].isupper():
        return text
    return text[:1].lower() + text[1:]


def _does(p: dict) -> str:
    labels = [RESPONSIBILITY_LABELS.get(r, r) for r in p["responsibilities"]]
    return _join(labels)


def _by_org(participants: list[dict], roles: set[str]) -> list[dict]:
    """Return one entry per organisation in any of the roles, merging what it does."""
    merged: dict[str, dict] = {}
    for p in participants:
        if p["role"] not in roles:
            continue
        entry = merged.get(p["ods"])
        if entry is None:
            merged[p["ods"]] = {**p, "roles": [p["role"]], "descriptions": [p["description"]]}
            continue
        entry["roles"].append(p["role"])
        entry["responsibilities"] += [
            r for r in p["responsibilities"] if r not in entry["responsibilities"]
        ]
        entry["descriptions"].append(p["description"])
        entry["processes_identifiable_data"] = (
            entry["processes_identifiable_data"] and p["processes_identifiable_data"]
        )
    return list(merged.values())


def _contact(p: dict) -> str:
    """Return the organisation's website and its DPO's email, for a list item."""
    parts = []
    if p["website"]:
        parts.append(md_link(p["website"], p["website"]))
    if p["dpo_email"]:
        # A DPO recorded by a title ("NECS Data Protection Officer") is "DPO"; a person by name.
        name = p["dpo_name"].strip()
        who = "DPO" if not name or "data protection officer" in name.lower() else md_escape(name)
        parts.append(f"{who} {md_link(p['dpo_email'], 'mailto:' + p['dpo_email'])}")
    return ", ".join(parts)


def _population(n: int) -> str:
    if n >= 1_000_000:
        millions = n / 1_000_000
        return f"{millions:.1f}".rstrip("0").rstrip(".") + " million"
    return f"{n:,}"


def _weeks(n: int) -> str:
    return f"{n} week" + ("" if n == 1 else "s")


def _practices(participants: list[dict], roles: set[str]) -> list[dict]:
    return [p for p in _by_org(participants, roles) if p["kind"] == "gp_practice"]


def area_is_named(region: str) -> bool:
    """Return whether the region names a place ("Devon"), not the reader's ("Your area")."""
    return bool(region.strip()) and not region.startswith(("Your ", "Our "))


# The wording below aims at plain English (NHS and GOV.UK content guidance): short
# sentences, everyday words, each list of organisations said once. notices.readability
# scores it; tests/notices/test_plain_english.py holds each demo region to its source notice.
def _about(facts: dict) -> str:
    prog = facts["programme"]
    area = md_escape(prog["region"])
    if area and not area_is_named(prog["region"]):  # "Your area" reads "your area" mid-sentence
        area = area[0].lower() + area[1:]
    lines = [
        "Population Health Management (PHM) aims to improve people's physical and mental "
        "health and wellbeing, and make care fair, timely and equal. Health and care "
        "services combine what they know to see an area's health and services.",
    ]
    where = f"The programme covers {area}"
    if prog["population"]:
        where += f": the {_population(prog['population'])} people who live in {area}"
    if prog["partnership"]:
        where += f", as part of {md_escape(prog['partnership'])}"
    lines.append(where + ".")
    dpia = facts.get("dpia")  # versions generated before DPIAs were recorded have none
    if dpia:
        # Short: the demo regions' notices must stay within their word budget.
        lines.append(
            "A data protection impact assessment (DPIA) checked the risks to your privacy. "
            f"It was signed off on {_day(dpia['signed_off_on'])}."
        )
    return "\n\n".join(lines)


def _day(iso: str) -> str:
    from datetime import date

    day = date.fromisoformat(iso)
    return f"{day.day} {day:%B %Y}"


def _controllers(facts: dict) -> str:
    controllers = _by_org(facts["participants"], CONTROLLER_ROLES)
    if not controllers:
        return ""
    practices = [p for p in controllers if p["kind"] == "gp_practice"]
    others = [p for p in controllers if p["kind"] != "gp_practice"]
    out = [
        "The controllers decide how and why your information is used. Each has a Data "
        "Protection Officer (DPO)."
    ]
    lines = []
    if practices:
        out.append("Your GP practice is one of these:")
        lines += [
            f"- {_name(p)}, ODS code {md_escape(p['ods'])}"
            + (f": {_contact(p)}" if _contact(p) else "")
            for p in practices
        ]
    for p in others:
        joint = " (joint controller)" if "joint_controller" in p["roles"] else ""
        line = f"- **{_name(p)}**{_kind(p)}{joint}"
        if p["part_of"]:
            line += f", part of {md_escape(p['part_of'])}"
        contact = _contact(p)
        if contact:
            line += f": {contact}"
        lines.append(line)
    out.append("\n".join(lines))
    lead = next((p for p in controllers if p["is_lead"]), None)
    if lead is not None and (len(controllers) > 1):
        out.append(f"{_short(lead)} is the lead controller: its DPO answers for all of them.")
    return "\n\n".join(out)


def _purposes(facts: dict) -> str:
    purposes = facts["programme"]["purposes"]
    if not purposes:
        return ""
    # Who is told when you might need more care is said once, under "Your details are
    # replaced by a code": who may use the code to find you.
    items = "\n".join(f"- {md_escape(p)}" for p in purposes)
    return "Your information is used for work such as:\n\n" + items


def _legal_basis(facts: dict) -> str:
    bases = facts["legal_bases"]
    if not bases:
        return ""
    # Their exact words follow in ANNEX_SECTIONS: behind an expanding section that the page
    # shows right here, and in the PDF's annex (its template says where).
    return "\n".join(f"- {law.reference(b)}. {law.plain_meaning(b)}" for b in bases)


def _law(facts: dict) -> str:
    """Return the verbatim wording of each legal basis, each after one plain sentence."""
    out = []
    for b in facts["legal_bases"]:
        out.append(f"**{law.reference(b)}.** {law.plain_meaning(b)} Its words are:")
        out.append(f"“{md_escape(b['text'].rstrip(';').rstrip('.'))}.”")
    return "\n\n".join(out)


def _sources_text(facts: dict) -> str:
    sources = facts["sources"]
    if not sources:
        return ""
    lines = []
    practices = [s for s in sources if s["kind"] == "gp_practice"]
    if practices:
        cats = []
        for s in practices:
            cats += [c for c in s["categories"] if c not in cats]
        label = (
            _join([_lower_first(CATEGORY_LABELS[c]) for c in cats]) or "the information they hold"
        )
        lines.append(f"- **Your GP practice**: {_lower_first(label)}")
    for s in sources:
        if s["kind"] == "gp_practice":
            continue
        label = (
            _join([_lower_first(CATEGORY_LABELS[c]) for c in s["categories"]])
            or "the information it holds"
        )
        line = f"- **{md_escape(s['name'])}**{_kind(s)}: {_lower_first(label)}"
        if s.get("description"):
            line += f". {md_escape(_sentence(s['description']))}"
        lines.append(line)
    return "It comes from records these organisations hold, not from you:\n\n" + "\n".join(lines)


def _pseudonymisation(facts: dict) -> str:
    participants = facts["participants"]
    by = [p for p in _by_org(participants, set(Participation.Role.values))]
    pseudonymisers = [p for p in by if "pseudonymise" in p["responsibilities"]]
    reidentifiers = [p for p in by if "re_identify" in p["responsibilities"]]
    out = [
        "Anything that can identify you, like your name or NHS number, is removed and replaced "
        "with a code"
        + (f" by {_join([_short(p) for p in pseudonymisers])}" if pseudonymisers else "")
        + ". This is called pseudonymisation. People working with the data see the code, not "
        "who you are."
    ]
    practices = [p for p in reidentifiers if p["kind"] == "gp_practice"]
    others = [p for p in reidentifiers if p["kind"] != "gp_practice"]
    who = (["your GP practice"] if practices else []) + [_short(p) for p in others]
    if who:
        out.append(
            f"Only {_join(who)} can use the code to find out who you are, to offer you care "
            "or support you might need."
        )
    else:
        out.append("Nobody taking part in the programme can use the code to identify you.")
    return "\n\n".join(out)


def _recipients(facts: dict) -> str:
    shared = _by_org(facts["participants"], PROCESSOR_ROLES | {Participation.Role.RECIPIENT.value})
    if not shared:
        return ""
    lines = []
    practices = [p for p in shared if p["kind"] == "gp_practice"]
    # A controller's full name, kind and website are said under "Who is responsible for your
    # information": here it goes by its short name.
    named = {p["ods"] for p in _by_org(facts["participants"], CONTROLLER_ROLES)}
    for p in shared:
        if p["kind"] == "gp_practice":
            continue
        role = (
            "processor"
            if "processor" in p["roles"]
            else "sub-processor"
            if "sub_processor" in p["roles"]
            else "recipient"
        )
        introduced = p["ods"] not in named
        line = f"- **{_name(p) if introduced else _short(p)}**"
        if p["part_of"] and introduced:
            line += f", part of {md_escape(p['part_of'])}"
        line += f" ({role})"
        does = _does(p)
        if does:
            line += f": will {does}"
        line += "."
        # The kind goes after the sentence: the seeds name the role right after the name.
        if _kind(p) and introduced:
            line += f" {_short(p)} is{_kind(p)[1:]}."
        for description in dict.fromkeys(d for d in p["descriptions"] if d):
            line += f" {md_escape(_sentence(description))}"
        if not p["processes_identifiable_data"] and not any(
            "identifiable" in d.lower() for d in p["descriptions"]
        ):
            line += f" {_short(p)} processes no identifiable data."
        if p["website"] and introduced:
            line += f" Website: {md_link(p['website'], p['website'])}"
        lines.append(line)
    if practices:
        # What the practice sends is said under "Where your information comes from", and its
        # use of the code under "Your details are replaced by a code": said once, there.
        said_elsewhere = {"provide_data", "re_identify"}
        does = _join(
            [
                RESPONSIBILITY_LABELS.get(r, r)
                for r in dict.fromkeys(r for p in practices for r in p["responsibilities"])
                if r not in said_elsewhere
            ]
        )
        lines.append("- **Your GP practice** (recipient)" + (f": will {does}." if does else "."))
    processors = [p for p in shared if set(p["roles"]) & PROCESSOR_ROLES]
    out = ["\n".join(lines)]
    if processors:
        out.append(
            "By law, processors must only use your information as the controllers say, and keep "
            "it confidential as your GP or hospital must."
        )
    return "\n\n".join(out)


def _overseas(facts: dict) -> str:
    prog = facts["programme"]
    transfer = prog["overseas_transfer"]
    detail = md_escape(prog["overseas_transfer_detail"]) if prog["overseas_transfer_detail"] else ""
    if transfer == Programme.OverseasTransfer.NONE:
        text = "Data is not transferred overseas."
    elif transfer == Programme.OverseasTransfer.ADEQUACY:
        text = (
            "Some data is sent outside the UK. It goes only to countries that UK law says "
            "protect personal data well enough (adequacy regulations)."
        )
    elif transfer == Programme.OverseasTransfer.IDTA:
        text = (
            "Some data is sent outside the UK under the Information Commissioner's "
            "International Data Transfer Agreement. This protects it as UK law does. You can "
            "ask the DPO for a copy."
        )
    elif transfer == Programme.OverseasTransfer.ADDENDUM:
        text = (
            "Some data is sent outside the UK under the EU standard contractual clauses, with "
            "the UK addendum. These protect it as UK law does. You can ask the DPO for a copy."
        )
    else:
        return ""  # not recorded: say nothing; the completeness check names the gap
    return text + (f"\n\n{detail}" if detail else "")


def _retention(facts: dict) -> str:
    prog = facts["programme"]
    participants = facts["participants"]
    out = []
    if prog["length_weeks"]:
        line = f"The programme runs for {_weeks(prog['length_weeks'])}"
        if prog["start_date"] and prog["end_date"]:
            from datetime import date

            start = date.fromisoformat(prog["start_date"])
            end = date.fromisoformat(prog["end_date"])
            line += f", from {start.day} {start:%B %Y} to {end.day} {end:%B %Y}"
        out.append(line + ".")
    elif prog["start_date"]:
        out.append(
            "The length of the programme has not been stated. Your information is kept only "
            "while the programme runs."
        )
    else:
        return ""
    holders = _by_org(participants, PROCESSOR_ROLES)
    controllers = _by_org(participants, CONTROLLER_ROLES)
    who = (
        _join([_short(p) for p in holders]) or "every organisation that holds it for the programme"
    )
    out.append(
        f"When it ends, all the data held for it by {who} is securely destroyed: the dataset "
        "is deleted together with the encryption keys, so no copy can be read."
    )
    if controllers:
        out.append(
            "A data destruction certificate, saying what was destroyed, how and when, is then "
            "sent to every data controller."
        )
    out.append("Records your GP and other care services already hold are not affected.")
    return "\n\n".join(out)


def _rights(facts: dict) -> str:
    bases = {b["code"] for b in facts["legal_bases"]}
    items = [
        "to be informed about how your information is used",
        "of access to the information held about you",
        "to have information corrected if it is wrong",
        "to have information erased (you can ask, but a public task may be exempt)",
        "to ask for the use of your information to be restricted",
        "to object (see “How to opt out”)",
        "not to be subject to decisions made solely by automated means, including profiling "
        "(people make all decisions about your care)",
        "to be told of a data breach likely to put your rights and freedoms at high risk",
    ]
    if bases & {"UK-GDPR-6-1-a", "UK-GDPR-9-2-a"}:
        items.append("to withdraw your consent at any time")
    text = "Under the UK GDPR you have the right:\n\n" + "\n".join(f"- {i}" for i in items)
    lead = next(
        (p for p in facts["participants"] if p["is_lead"] and p["dpo_email"]),
        None,
    )
    if lead is not None:
        text += (
            f"\n\nTo use them, contact {_short(lead)}'s DPO: "
            f"{md_link(lead['dpo_email'], 'mailto:' + lead['dpo_email'])}."
        )
    return text


TYPE1_EFFECT = (
    "It will then share your information only for your own care, in this programme or any "
    "other it takes part in."
)


def _opt_out(facts: dict) -> str:
    prog = facts["programme"]
    out = [
        "You have the right to object to your information being used in this way. If you are "
        "happy for it to be used, do nothing. You can change your mind at any time."
    ]
    if prog["type1_opt_out_applies"]:
        if prog["type1_opt_out_contact"] == Programme.Type1Contact.PRACTICE_DPO:
            practices = _practices(facts["participants"], set(Participation.Role.values))
            out.append(
                "**A Type 1 opt-out.** To opt out, contact your GP practice's Data "
                "Protection Officer in the first instance. " + TYPE1_EFFECT
            )
            contacts = [
                f"- {md_escape(p['name'])}: {md_link(p['dpo_email'], 'mailto:' + p['dpo_email'])}"
                for p in practices
                if p["dpo_email"]
            ]
            if contacts:
                out.append("\n".join(contacts))
        else:
            out.append("**A Type 1 opt-out.** Ask your GP practice. " + TYPE1_EFFECT)
    else:
        out.append("Type 1 opt-outs recorded at GP practices do not apply to this programme.")
    if prog["national_opt_out_applies"]:
        out.append(
            "**The national data opt-out.** Register or change it at "
            f"{md_link(NATIONAL_OPT_OUT_URL, NATIONAL_OPT_OUT_URL)} or on "
            f"{md_link(NATIONAL_OPT_OUT_PHONE, 'tel:' + NATIONAL_OPT_OUT_PHONE.replace(' ', ''))}. "
            "National data opt-outs are applied to this programme, so if you have one your "
            "information is left out."
        )
        out.append(
            "It does not apply where the law requires sharing, or for the public interest, "
            "such as managing contagious diseases. More at "
            f"{md_link(NATIONAL_OPT_OUT_EXEMPTIONS_URL, NATIONAL_OPT_OUT_EXEMPTIONS_URL)}."
        )
    else:
        out.append(
            "**The national data opt-out does not apply to this programme.** "
            f"{md_escape(_sentence(prog['national_opt_out_exemption']))}"
        )
    return "\n\n".join(out)


def _complaints(facts: dict) -> str:
    return (
        "Contact the DPO first.\n\n"
        "You also have the right to complain to the Information Commissioner's Office (ICO), "
        f"at {md_link(ICO_COMPLAINT_URL, ICO_COMPLAINT_URL)} or on "
        f"{md_link(ICO_PHONE, 'tel:' + ICO_PHONE.replace(' ', ''))}."
    )


WRITERS = {
    "about": _about,
    "controllers": _controllers,
    "purposes": _purposes,
    "legal_basis": _legal_basis,
    "law": _law,
    "sources": _sources_text,
    "pseudonymisation": _pseudonymisation,
    "recipients": _recipients,
    "overseas": _overseas,
    "retention": _retention,
    "rights": _rights,
    "opt_out": _opt_out,
    "complaints": _complaints,
}


def sections(facts: dict, *, changes: list[str], since: int | None) -> list[dict]:
    """Return the notice's sections, generated from the facts; local wording starts empty."""
    out = []
    if changes and since is not None:
        out.append(
            {
                "key": "changes",
                "title": SECTION_TITLES["changes"],
                "generated_text": f"Since version {since} of this notice:\n\n"
                + "\n".join(f"- {md_escape(c)}" for c in changes),
                "local_text": "",
            }
        )
    for key, writer in WRITERS.items():
        out.append(
            {
                "key": key,
                "title": SECTION_TITLES[key],
                "generated_text": writer(facts),
                "local_text": "",
            }
        )
    return out


# --- what changed ------------------------------------------------------------------
ROLE_LABELS = dict(Participation.Role.choices)


def changes_between(old: dict, new: dict) -> list[str]:
    """Return, in plain sentences, how the programme's facts changed from old to new."""
    if not old:
        return []
    out: list[str] = []
    po, pn = old["programme"], new["programme"]

    def key(p: dict) -> tuple[str, str]:
        return (p["ods"], p["role"])

    was = {key(p): p for p in old["participants"]}
    now = {key(p): p for p in new["participants"]}
    for k in now.keys() - was.keys():
        p = now[k]
        does = _does(p)
        out.append(
            f"{p['name']} now takes part as {ROLE_LABELS.get(p['role'], p['role']).lower()}"
            + (f": it will {does}." if does else ".")
        )
    for k in was.keys() - now.keys():
        p = was[k]
        out.append(
            f"{p['name']} no longer takes part as {ROLE_LABELS.get(p['role'], p['role']).lower()}."
        )
    for k in now.keys() & was.keys():
        if now[k]["responsibilities"] != was[k]["responsibilities"]:
            p = now[k]
            out.append(f"What {p['name']} does has changed: it will now {_does(p) or 'take part'}.")
    if po["length_weeks"] != pn["length_weeks"]:
        if pn["length_weeks"] and po["length_weeks"]:
            out.append(
                f"The programme now runs for {_weeks(pn['length_weeks'])}, "
                f"not {_weeks(po['length_weeks'])}."
            )
        elif pn["length_weeks"]:
            out.append(f"The programme's length is now stated: {_weeks(pn['length_weeks'])}.")
        else:
            out.append("The programme's length is no longer stated.")
    added = [p for p in pn["purposes"] if p not in po["purposes"]]
    removed = [p for p in po["purposes"] if p not in pn["purposes"]]
    out += [f"New purpose: {p}." for p in added]
    out += [f"Purpose no longer pursued: {p}." for p in removed]
    old_bases = {b["code"]: b for b in old["legal_bases"]}
    new_bases = {b["code"]: b for b in new["legal_bases"]}
    for code in new_bases.keys() - old_bases.keys():
        out.append(f"New legal basis: Article {new_bases[code]['article']}.")
    for code in old_bases.keys() - new_bases.keys():
        out.append(f"Legal basis no longer relied on: Article {old_bases[code]['article']}.")
    if (po["overseas_transfer"], po["overseas_transfer_detail"]) != (
        pn["overseas_transfer"],
        pn["overseas_transfer_detail"],
    ):
        out.append("What the notice says about transfers outside the UK has changed.")
    for field, label in (
        ("type1_opt_out_applies", "Type 1 opt-outs"),
        ("type1_opt_out_contact", "Type 1 opt-outs"),
        ("national_opt_out_applies", "the national data opt-out"),
        ("national_opt_out_exemption", "the national data opt-out"),
    ):
        if po[field] != pn[field]:
            sentence = f"How {label} work for this programme has changed."
            if sentence not in out:
                out.append(sentence)
    old_sources = {s["ods"]: s for s in old["sources"]}
    for s in new["sources"]:
        before = old_sources.get(s["ods"], {}).get("categories", [])
        fresh = [_lower_first(CATEGORY_LABELS[c]) for c in s["categories"] if c not in before]
        if fresh:
            out.append(f"{s['name']} now sends {_join(fresh)}.")
    if po["population"] != pn["population"] or po["region"] != pn["region"]:
        out.append("The area the programme covers has changed.")
    dpia = new.get("dpia")
    if dpia and dpia != old.get("dpia"):
        out.append(
            f"A data protection impact assessment was signed off on {_day(dpia['signed_off_on'])}."
        )
    return out
