"""A national check's results, compiled once into sealed sorted arrays, and what uses them."""

import datetime as dt

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from consent import register, services
from consent.models import NationalOptOutCheck
from consent.reasons import OptOutReason
from consent.register import national_check_results, opt_out_register_check, opt_out_register_for


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch):
    """Each test starts as a new worker would: nothing compiled in memory."""
    monkeypatch.setattr(register, "_loaded", {})


def stored_name(check) -> str:
    return f"consent/national-checks/{check.pk}.results.enc"


def test_a_check_is_compiled_into_a_sealed_file_that_holds_no_number_in_the_clear(
    flow, national_check, numbers
):
    a, b, c = numbers(3)
    check = national_check([a, b, c], [a, c])
    results = national_check_results(check=check)
    assert results.numbers.tolist() == sorted(int(n) for n in (a, b, c))
    assert dict(zip(results.numbers.tolist(), results.opted_out.tolist(), strict=True)) == {
        int(a): False,
        int(b): True,
        int(c): False,
    }
    with default_storage.open(stored_name(check), "rb") as f:
        sealed = f.read()
    for number in (a, b, c):
        assert number.encode() not in sealed
        assert np.int64(int(number)).tobytes() not in sealed


def test_a_worker_reads_the_compiled_file_without_reading_the_check_s_entries(
    flow, national_check, numbers, monkeypatch
):
    a, b = numbers(2)
    check = national_check([a, b], [a])
    national_check_results(check=check)
    monkeypatch.setattr(register, "_loaded", {})

    def boom(check):
        raise AssertionError("compiled again")

    monkeypatch.setattr(register, "_compile_national", boom)
    assert opt_out_register_check(data_flow=flow, nhs_numbers=[a, b]).excluded == [
        (b, ["national"])
    ]


def test_a_check_imported_before_compiling_existed_is_compiled_when_first_needed(
    flow, national_check, numbers
):
    a, b = numbers(2)
    check = national_check([a, b], [a])
    default_storage.delete(stored_name(check))  # as a check imported by an older release
    result = opt_out_register_check(data_flow=flow, nhs_numbers=[a, b])
    assert result.excluded == [(b, ["national"])]
    assert default_storage.exists(stored_name(check))


def test_a_file_left_by_another_check_under_the_same_name_is_never_believed(
    flow, national_check, numbers
):
    a, b = numbers(2)
    check = national_check([a, b], [a])
    if default_storage.exists(stored_name(check)):
        default_storage.delete(stored_name(check))
    # Another check's sealed file (a restored database reused the id): it does not open.
    default_storage.save(stored_name(check), ContentFile(b"PHMSEAL1" + b"\0" * 64))
    result = opt_out_register_check(data_flow=flow, nhs_numbers=[a, b])
    assert result.excluded == [(b, ["national"])]


def test_the_newest_covering_check_decides_in_the_compiled_form(
    flow, national_check, numbers, today
):
    a, b, c = numbers(3)
    national_check([a, b], [a], checked_on=today - dt.timedelta(days=10))  # b opted out then
    national_check([b, c], [b, c], checked_on=today)  # and b is allowed now
    result = opt_out_register_check(data_flow=flow, nhs_numbers=[a, b, c])
    assert result.excluded == []


def test_a_worker_merges_a_programme_s_checks_once_until_another_check_is_imported(
    flow, national_check, numbers, today, monkeypatch
):
    a, b, c = numbers(3)
    national_check([a, b], [a], checked_on=today - dt.timedelta(days=10))  # b opted out
    national_check([b], [b], checked_on=today - dt.timedelta(days=5))  # and is allowed now
    merges = []
    merge = register._merge_newest_first
    monkeypatch.setattr(register, "_merge_newest_first", lambda r: merges.append(1) or merge(r))

    def excluded():
        return opt_out_register_check(data_flow=flow, nhs_numbers=[a, b, c]).excluded

    monkeypatch.setattr(register, "_loaded", {})  # a worker: the imports compiled them
    assert excluded() == [(c, ["national_unchecked"])]
    assert len(register._loaded) == 1  # the merged results only, not each check's too
    assert excluded() == [(c, ["national_unchecked"])]
    assert len(merges) == 1  # the second job's register found them merged
    national_check([b, c], [c], checked_on=today)  # b opted out again; c now checked
    assert excluded() == [(b, ["national"])]
    assert len(merges) == 2


def test_the_register_s_masks_agree_with_its_reasons(flow, national_check, record, numbers):
    a, b, c, d = numbers(4)
    record(a)
    record(c)
    national_check([a, b, c], [a, b])
    ids = np.array(sorted(int(n) for n in (a, b, c, d)), dtype=np.int64)
    register_ = opt_out_register_for(data_flow=flow)
    masks = register_.exclusion_masks(ids)
    from_masks = {
        int(n): [r.value for r in OptOutReason if masks[r][i]]
        for i, n in enumerate(ids)
        if any(masks[r][i] for r in OptOutReason)
    }
    assert from_masks == register_.reasons_by_number(ids)
    assert from_masks == {
        int(a): ["type1"],
        int(c): ["type1", "national"],
        int(d): ["national_unchecked"],
    }


def test_purging_a_check_deletes_its_compiled_results(
    flow, national_check, numbers, today, monkeypatch
):
    a, b = numbers(2)
    check = national_check([a, b], [a])
    national_check_results(check=check)
    assert default_storage.exists(stored_name(check))
    services.national_checks_purge_expired(today=check.expires_on)
    check.refresh_from_db()
    assert check.status == NationalOptOutCheck.Status.PURGED
    assert not default_storage.exists(stored_name(check))
