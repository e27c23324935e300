"""How easy a text is to read: Flesch reading ease and Flesch-Kincaid grade, one rule for all.

`score` is the only place the portal counts words, sentences and syllables: the
draft page, the publish warning, the API and the tests all call it.

The text is plain, one paragraph, heading or list item a line (notices.render.to_plain
gives it so). The rule:

1. Web and email addresses are left out: people follow them, they do not read them.
2. A word is what a word processor counts: a run of characters between spaces with a
   letter or a digit in it ("opt-out", "6(1)(e)", "0300").
3. A sentence ends at a full stop, question mark or exclamation mark followed by a
   space, and at the end of each line: a heading or a list item stands on its own.
4. Syllables: words of letters over six letters long count the break points of
   Pyphen's en_GB hyphenation dictionary (a WeasyPrint dependency) plus one; shorter
   words, which the dictionary seldom splits, count their groups of vowels less a silent
   final "e" or "-ed"; a hyphenated word adds up its parts. A word with a digit (a
   number, a code) counts one.
5. Reading ease = 206.835 - 1.015 x words per sentence - 84.6 x syllables per word
   (Flesch 1948); grade = 0.39 x words per sentence + 11.8 x syllables per word - 15.59
   (Kincaid et al. 1975). Higher ease is easier; 60 to 70 is plain English. The grade is
   a US school year: add 5 for a reading age.

The strict rule (`score(text, strict=True)`) is the measure issue 19 set the notices'
targets by, kept beside the portal's rule so that the tests can hold the public page to
both. It leaves nothing out and lets no line end a sentence:

S1. Addresses are words like any other.
S2. A sentence ends only at a full stop, question mark or exclamation mark followed by a
    space (or at the end of the text): a heading, a list item or a link without one runs
    on into what follows.
S3. Syllables: every word of letters counts the break points of Pyphen's en_GB dictionary,
    as Pyphen gives them by default, plus one; a hyphenated word adds up its parts; a
    word with a digit counts one.

Words (rule 2) and the formulas (rule 5) are the same for both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import pyphen

# An address ends before the punctuation that ends its sentence ("... at https://x.org/.").
_ADDRESS = re.compile(
    r"(?:\b(?:https?://|mailto:|tel:|www\.)|[\w.+-]+@)\S*?(?=[.,;:!?)\]”\"’']*(?:\s|$))"
)
_LETTERS = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s|$)")
_VOWEL_GROUPS = re.compile(r"[aeiouy]+")


@dataclass(frozen=True)
class Score:
    """The counts of a text, and the two figures made from them."""

    words: int
    sentences: int
    syllables: int

    @property
    def words_per_sentence(self) -> float:
        return self.words / self.sentences

    @property
    def syllables_per_word(self) -> float:
        return self.syllables / self.words

    @property
    def ease(self) -> float:
        """Flesch reading ease, to one decimal place."""
        return round(206.835 - 1.015 * self.words_per_sentence - 84.6 * self.syllables_per_word, 1)

    @property
    def grade(self) -> float:
        """Flesch-Kincaid grade level, to one decimal place."""
        return round(0.39 * self.words_per_sentence + 11.8 * self.syllables_per_word - 15.59, 1)

    @property
    def label(self) -> str:
        return label(self.ease)

    def as_dict(self) -> dict:
        return {
            "words": self.words,
            "sentences": self.sentences,
            "flesch_reading_ease": self.ease,
            "flesch_kincaid_grade": self.grade,
            "label": self.label,
        }


@lru_cache(maxsize=1)
def _hyphenator() -> pyphen.Pyphen:
    return pyphen.Pyphen(lang="en_GB", left=1, right=1)


@lru_cache(maxsize=1)
def _pyphen_as_it_comes() -> pyphen.Pyphen:
    return pyphen.Pyphen(lang="en_GB")


@lru_cache(maxsize=20000)
def _syllables_by_pyphen(word: str) -> int:
    return len(_pyphen_as_it_comes().positions(word.lower().replace("’", "'"))) + 1


@lru_cache(maxsize=20000)
def _syllables_of_letters(word: str) -> int:
    word = word.lower().replace("’", "'")
    if len(word) > 6:
        return len(_hyphenator().positions(word)) + 1
    groups = len(_VOWEL_GROUPS.findall(word))
    silent_end = (word.endswith("e") and not word.endswith(("le", "ee"))) or (
        word.endswith("ed") and not word.endswith(("ted", "ded"))
    )
    if silent_end and groups > 1:
        groups -= 1
    return max(1, groups)


def syllables(word: str, *, strict: bool = False) -> int:
    """Return the syllables of one word (rule 4 above; S3 if strict)."""
    if any(c.isdigit() for c in word):
        return 1
    count = _syllables_by_pyphen if strict else _syllables_of_letters
    return max(1, sum(count(part) for part in _LETTERS.findall(word)))


def _words(text: str) -> list[str]:
    return [t for t in text.split() if any(c.isalnum() for c in t)]


def sentences(text: str, *, strict: bool = False) -> list[str]:
    """Return the sentences of a plain text, addresses left out (rules 1 and 3 above).

    If strict, addresses stay and the text is one line (S1 and S2).
    """
    out = []
    lines = [" ".join(text.split())] if strict else _ADDRESS.sub(" ", text).splitlines()
    for line in lines:
        start = 0
        for end in _SENTENCE_END.finditer(line):
            out.append(line[start : end.end()])
            start = end.end()
        out.append(line[start:])
    return [" ".join(s.split()) for s in out if _words(s)]


def score(text: str, *, strict: bool = False) -> Score | None:
    """Return the counts, reading ease and grade of a plain text; None if it has no words.

    strict=True applies the strict rule (S1 to S3 above) instead of the portal's.
    """
    found = sentences(text, strict=strict)
    words = [w for s in found for w in _words(s)]
    if not words:
        return None
    return Score(
        words=len(words),
        sentences=len(found),
        syllables=sum(syllables(w, strict=strict) for w in words),
    )


# The formulas are made for sentences: a heading or a list item of two long words
# ("monitoring safety") scores a high grade yet reads at a glance.
HARD_SENTENCE_MIN_WORDS = 10


def hardest_sentences(text: str, *, limit: int, above_grade: float) -> list[tuple[str, Score]]:
    """Return up to `limit` sentences harder than the grade, hardest first, each with its score.

    Only sentences of HARD_SENTENCE_MIN_WORDS words or more are candidates.
    """
    scored = [(s, score(s)) for s in sentences(text)]
    hard = [
        (s, sc)
        for s, sc in scored
        if sc is not None and sc.words >= HARD_SENTENCE_MIN_WORDS and sc.grade > above_grade
    ]
    hard.sort(key=lambda pair: (-pair[1].grade, pair[1].ease))
    return hard[:limit]


def label(ease: float | None) -> str:
    """Return how people usually describe a Flesch reading ease score."""
    if ease is None:
        return "no text to score"
    for floor, name in (
        (90, "very easy"),
        (80, "easy"),
        (70, "fairly easy"),
        (60, "plain English"),
        (50, "fairly difficult"),
        (30, "difficult"),
    ):
        if ease >= floor:
            return name
    return "very difficult"


def is_harder(new: Score | None, old: Score | None) -> bool:
    """Return whether new reads harder than old: a lower reading ease or a higher grade."""
    if new is None or old is None:
        return False
    return new.ease < old.ease or new.grade > old.grade
