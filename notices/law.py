"""What each legal basis allows, in one plain sentence, and how a notice names it.

The official wording lives in the governance catalogue (governance.catalogue); a
notice quotes it in full in its annex, each article after the sentence here.
"""

from __future__ import annotations

from notices.render import md_escape

# Keyed by the catalogue's code. A basis not listed here is introduced by its title.
PLAIN_MEANING = {
    "UK-GDPR-6-1-a": "It allows your information to be used when you have agreed to it.",
    "UK-GDPR-6-1-b": "It allows your information to be used to carry out a contract with you.",
    "UK-GDPR-6-1-c": "It allows your information to be used when another law requires it.",
    "UK-GDPR-6-1-d": "It allows your information to be used to protect someone's life.",
    "UK-GDPR-6-1-e": "It lets public bodies, like the NHS, use information for their public tasks.",
    "UK-GDPR-6-1-f": (
        "It allows your information to be used for a fair reason that does not override "
        "your rights."
    ),
    "UK-GDPR-9-2-a": (
        "It allows information about your health to be used when you have clearly agreed."
    ),
    "UK-GDPR-9-2-c": (
        "It allows information about your health to be used to save a life when you cannot agree."
    ),
    "UK-GDPR-9-2-g": (
        "It allows information about your health to be used where UK law says there is a "
        "strong public interest."
    ),
    "UK-GDPR-9-2-h": "It lets health information be used to give and manage health and social care.",
    "UK-GDPR-9-2-i": "It allows information about your health to be used to protect public health.",
    "UK-GDPR-9-2-j": (
        "It allows information about your health to be used for research and statistics in "
        "the public interest."
    ),
    "CLDC-IMPLIED-CONSENT": (
        "It allows your care team to share your records for your own care, as you would expect."
    ),
    "CLDC-S251": (
        "It allows confidential information to be used without consent, with approval under "
        "section 251 of the NHS Act 2006."
    ),
    "CLDC-NOT-ENGAGED": (
        "It says the duty of confidence does not apply once your name and NHS number are "
        "replaced by a code."
    ),
}


def reference(basis: dict) -> str:
    """Return how the notice names the basis: "UK GDPR Article 6(1)(e) (Public task)"."""
    if basis["regime"] in ("uk_gdpr_6", "uk_gdpr_9"):
        return f"UK GDPR Article {md_escape(basis['article'])} ({md_escape(basis['title'])})"
    return (
        f"{md_escape(basis['regime_label'])}, {md_escape(basis['article'])} "
        f"({md_escape(basis['title'])})"
    )


def plain_meaning(basis: dict) -> str:
    """Return one plain sentence of what the basis allows."""
    known = PLAIN_MEANING.get(basis["code"])
    if known:
        return known
    return f"It covers {md_escape(basis['title'][:1].lower() + basis['title'][1:])}."
