"""The national "Check for National Data Opt-outs" service's file format (consent/files.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from consent.files import (
    national_local_id,
    national_reply_kind,
    national_submission,
    number_lines,
)

A, B = "9434765919", "4010232137"


def test_the_submission_is_each_number_and_a_comma_with_lf_ends_and_no_header():
    assert national_submission([A, B]) == b"9434765919,\n4010232137,\n"


@pytest.mark.parametrize("bad", ["9434765918", "943476591", " 9434765919", "94347659190"])
def test_a_submission_with_a_bad_number_is_not_built(bad):
    with pytest.raises(ValueError, match="Number 2 of the submission"):
        national_submission([A, bad])


@pytest.mark.parametrize(
    "reply",
    [
        b"9434765919,\n4010232137,\n",
        b"9434765919,\r\n4010232137,\r\n",
        b"9434765919\n4010232137\n",
        b"9434765919\r\n4010232137",
        b'"9434765919",\n4010232137 ,\n\n',
    ],
)
def test_the_reply_is_read_in_the_comma_form_or_plain_lines_lf_or_crlf(reply):
    text = reply.decode()
    assert national_reply_kind(text).kind == "numbers"
    good, bad = number_lines(text)
    assert [n for _, n in good] == [A, B] and bad == []


def test_a_bad_line_of_a_reply_is_named_by_its_line():
    good, bad = number_lines("9434765919,\n9434765918,\n")
    assert [n for _, n in good] == [A]
    assert [(e.line, e.error) for e in bad] == [
        (2, "The NHS number's check digit is wrong (Modulus 11).")
    ]


@pytest.mark.parametrize(
    "words",
    [
        "ERROR: Invalid NHS number on line 3",
        "The file failed validation.",
        "Rejected: incorrect file format",
    ],
)
def test_a_line_of_the_services_words_is_its_error_never_an_empty_answer(words):
    reply = national_reply_kind(words + "\n")
    assert (reply.kind, reply.words) == ("error", words)


def test_other_words_are_a_note_not_an_answer():
    reply = national_reply_kind("A job has been created in POS to clean the supplied file.")
    assert reply.kind == "note"


def test_an_empty_reply_is_an_answer_of_no_numbers():
    assert national_reply_kind("").kind == "numbers"
    assert number_lines("") == ([], [])


def test_the_file_is_named_mailbox_ddmmyy_and_sequence_within_the_month():
    assert national_local_id("X26abc1", dt.date(2026, 6, 3), 1) == "X26ABC1-030626-0001"
    assert national_local_id("X26ABC1", dt.date(2026, 12, 31), 9999) == "X26ABC1-311226-9999"


@pytest.mark.parametrize(("mailbox", "sequence"), [("X26:ABC", 1), ("X26 ABC", 1), ("X26", 0)])
def test_a_name_the_service_would_not_answer_is_never_made(mailbox, sequence):
    with pytest.raises(ValueError):
        national_local_id(mailbox, dt.date(2026, 6, 3), sequence)
