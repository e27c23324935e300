"""The portal's one rule for reading ease and grade (notices.readability)."""

from __future__ import annotations

import pytest

from notices import readability
from notices.readability import Score, hardest_sentences, is_harder, score, sentences, syllables


def test_plain_words_score_higher_than_legal_wording():
    plain = "You can opt out. Ask your GP. It is free and quick."
    legal = (
        "Processing is necessary for the performance of a task carried out in the public "
        "interest or in the exercise of official authority vested in the controller."
    )
    assert score(plain).ease > 80
    assert score(legal).ease < 40
    assert score(legal).grade > score(plain).grade + 10
    assert score("") is None


def test_the_figures_are_those_of_the_published_formulas():
    # 2 sentences, 10 words, 12 syllables ("opt-out" is one word of two syllables; "GP" one).
    found = score("Ask your GP to opt-out.\nIt is quick and easy.")
    assert (found.words, found.sentences, found.syllables) == (10, 2, 12)
    assert found.ease == round(206.835 - 1.015 * 10 / 2 - 84.6 * 12 / 10, 1)
    assert found.grade == round(0.39 * 10 / 2 + 11.8 * 12 / 10 - 15.59, 1)


def test_a_line_ends_a_sentence_and_a_colon_does_not():
    text = "Your information is used for: planning services\nmonitoring safety\nHow to opt out"
    assert sentences(text) == [
        "Your information is used for: planning services",
        "monitoring safety",
        "How to opt out",
    ]
    assert sentences("It ends here. And (this too.) Then “a quote.” Last") == [
        "It ends here.",
        "And (this too.)",
        "Then “a quote.”",
        "Last",
    ]


def test_web_and_email_addresses_are_not_words_but_their_sentence_still_ends():
    text = "Find out more at https://www.nhs.uk/your-nhs-data-matters/. Or write to dpo@x.nhs.uk."
    assert sentences(text) == ["Find out more at .", "Or write to ."]
    assert score(text).words == 7


@pytest.mark.parametrize(
    "word,count",
    [
        ("the", 1),
        ("code", 1),  # a silent final e
        ("used", 1),  # a silent -ed
        ("wanted", 2),
        ("people", 2),
        ("information", 4),  # Pyphen's en_GB dictionary
        ("opt-out", 2),
        ("0300", 1),
        ("6(1)(e)", 1),
    ],
)
def test_syllables(word, count):
    assert syllables(word) == count


def test_the_hardest_sentences_are_long_ones_above_the_grade_hardest_first():
    text = (
        "Monitoring safety\n"
        "Ask your GP.\n"
        "Optum Health Solutions UK processes pseudonymised information under contract with "
        "the commissioning organisations.\n"
        "The national data opt-out applies to identifiable information about your health."
    )
    found = hardest_sentences(text, limit=5, above_grade=9)
    assert [s for s, _ in found] == [
        "Optum Health Solutions UK processes pseudonymised information under contract with the "
        "commissioning organisations.",
        "The national data opt-out applies to identifiable information about your health.",
    ]
    assert found[0][1].grade > found[1][1].grade > 9
    assert hardest_sentences(text, limit=1, above_grade=9) == found[:1]


def test_harder_is_a_lower_ease_or_a_higher_grade():
    easy = Score(words=20, sentences=4, syllables=26)
    hard = Score(words=20, sentences=1, syllables=34)
    assert is_harder(hard, easy) and not is_harder(easy, hard)
    assert not is_harder(easy, easy)
    assert not is_harder(easy, None) and not is_harder(None, easy)


def test_labels_name_the_usual_bands():
    assert readability.label(72.0) == "fairly easy"
    assert readability.label(60.0) == "plain English"
    assert readability.label(45.0) == "difficult"
    assert readability.label(None) == "no text to score"


# --- the strict rule: the issue's own measure, kept beside the portal's -------------------
@pytest.mark.parametrize(
    "text",
    [
        "You can opt out. Ask your GP!",
        "Is it free? It is. Information on your health is kept for two weeks.",
        "The programme ends in 2027. Its code is destroyed, with the encryption keys.",
    ],
)
def test_the_strict_rule_agrees_with_the_portals_on_one_line_of_plain_sentences(text):
    assert sentences(text, strict=True) == sentences(text)
    assert score(text, strict=True) == score(text)


def test_the_strict_rule_ends_sentences_only_at_a_stop_and_counts_addresses():
    text = "How to opt out\nAsk your GP. More at https://www.nhs.uk/your-nhs-data-matters/."
    assert sentences(text, strict=True) == [
        "How to opt out Ask your GP.",
        "More at https://www.nhs.uk/your-nhs-data-matters/.",
    ]
    assert (score(text).words, score(text).sentences) == (9, 3)
    assert (score(text, strict=True).words, score(text, strict=True).sentences) == (10, 2)


@pytest.mark.parametrize(
    "word,portal,strict",
    [
        ("information", 4, 4),
        ("people", 2, 1),  # Pyphen as it comes keeps two letters either side of a break
        ("opt-out", 2, 2),
        ("0300", 1, 1),
    ],
)
def test_the_strict_rule_counts_every_words_syllables_by_pyphen(word, portal, strict):
    assert syllables(word) == portal
    assert syllables(word, strict=True) == strict
