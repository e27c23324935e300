"""The opt-out register: "may this patient's data flow on this data flow?", in bulk.

`opt_out_register_for` loads the register of a flow once; a pseudonymisation job then
asks it about every distinct NHS number of an extract (`exclusion_masks`, vectorised),
the API about up to 100,000 numbers a call (`opt_out_register_check`).

Both opt-outs are held as NHS numbers (int64), matched in bulk, so no number asked about
needs a keyed blind index:

- National data opt-out: each complete check's results are compiled once, when the
  check is imported, into its numbers and their opted-out flags, sealed (encrypted) in
  storage at a path named after the check (`national_check_results`). Workers load them
  in milliseconds, and merge a programme's unexpired checks once while they stay the
  same (`national_results_merged`), then hash them (phm_portal.lib.number_hash) to
  answer each batch of new patients. A check imported before compiled results existed
  is compiled the first time it is needed.
- Type 1: the few current dissents at the programme's practices, read and decrypted
  when the register is loaded (they change at any time), a sorted array matched with
  np.searchsorted (small enough to stay in the CPU's caches).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from consent.models import (
    NHS_NUMBER_PURPOSE,
    NationalOptOutCheck,
    NationalOptOutEntry,
)
from consent.reasons import OptOutReason
from consent.selectors import (
    national_usable_checks,
    normalise_many,
    patient_indexes_registered_at,
    programme_practice_ids,
    type1_current_dissent_numbers,
)
from governance.models import DataFlow
from phm_portal.errors import NotAllowedNow
from phm_portal.lib import envelope
from phm_portal.lib.crypto import blind_indexer, decrypt_field
from phm_portal.lib.number_hash import HashedNumbers

# The code of the refusal when no unexpired national check covers a programme (API "code").
NATIONAL_CHECK_MISSING = "national_check_missing"

_EMPTY = np.zeros(0, dtype=np.int64)


# --- compiled opt-outs -----------------------------------------------------------------------
@dataclass(frozen=True)
class NationalResults:
    """A national check's results: the NHS numbers it covered (sorted) and who opted out."""

    numbers: np.ndarray  # int64, sorted, distinct
    opted_out: np.ndarray  # bool, one per number


def _look_up(
    numbers: np.ndarray, ids: np.ndarray, flags: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return (found, flag of the one found) of each id in a sorted array of numbers."""
    if not len(numbers) or not len(ids):
        nothing = np.zeros(len(ids), dtype=bool)
        return nothing, nothing
    at = np.minimum(np.searchsorted(numbers, ids), len(numbers) - 1)
    found = numbers[at] == ids
    if flags is None:
        return found, found
    return found, found & flags[at]


def _results_name(check_id: int) -> str:
    return f"consent/national-checks/{check_id}.results.enc"


def _results_ad(check: NationalOptOutCheck) -> bytes:
    # Binds the file to this check exactly: a file left by another check that had the
    # same id (a database restored, a test database) fails and is compiled again.
    return (
        f"national-check:{check.pk}:{check.created_at.isoformat()}:{check.submitted}:"
        f"{check.returned}:{check.opted_out}:{check.checked_on}"
    ).encode()


# Compiled results loaded by this process, by check, and merged, by the checks merged (a
# complete check never changes): a worker reads and merges a programme's checks once, not
# for every job, while they are the same checks.
_Loaded = TypeVar("_Loaded", NationalResults, HashedNumbers)
_loaded: dict[bytes, NationalResults | HashedNumbers] = {}
_LOADED_MAX = 4


def _remember(key: bytes, results: _Loaded) -> _Loaded:
    if key not in _loaded and len(_loaded) >= _LOADED_MAX:
        _loaded.pop(next(iter(_loaded)))
    _loaded[key] = results
    return results


def national_check_results(*, check: NationalOptOutCheck, keep: bool = True) -> NationalResults:
    """Return a complete check's results as sorted arrays, compiling them on first need.

    The one place that compiles them: from the check's entries (each patient's number
    decrypted once), sealed under a fresh data key wrapped by the KEK, and stored under
    the check's name; later calls, in any process, read that file. keep: remember them in
    this process (a merge of several checks keeps only what it merged).
    """
    if check.status != NationalOptOutCheck.Status.COMPLETE:
        raise NotAllowedNow(f"This check is {check.get_status_display().lower()}.")
    ad = _results_ad(check)
    cached = _loaded.get(ad)
    if cached is not None:
        return cached
    name = _results_name(check.pk)
    results = None
    if default_storage.exists(name):
        try:
            with default_storage.open(name, "rb") as f:
                sealed = envelope.SealedReader(settings.KEY_ENCRYPTION_KEY, f, ad)
                numbers = np.frombuffer(sealed.part(0), dtype=np.int64)
                opted_out = np.frombuffer(sealed.part(1), dtype=bool)
            if len(numbers) == len(opted_out):
                results = NationalResults(numbers, opted_out)
        except envelope.DecryptionFailed:
            results = None  # another check's leftover, or damaged: compiled again below
    if results is None:
        results = _compile_national(check)
        sealed = envelope.seal_parts(
            settings.KEY_ENCRYPTION_KEY,
            [results.numbers.tobytes(), results.opted_out.tobytes()],
            ad,
        )
        if default_storage.exists(name):
            default_storage.delete(name)
        default_storage.save(name, ContentFile(sealed))
    return _remember(ad, results) if keep else results


def _compile_national(check: NationalOptOutCheck) -> NationalResults:
    rows = NationalOptOutEntry.objects.filter(check_run=check).values_list(
        "patient__nhs_number_encrypted", "opted_out"
    )
    numbers = []
    flags = []
    for token, opted_out in rows.iterator(chunk_size=20_000):
        numbers.append(int(decrypt_field(token, purpose=NHS_NUMBER_PURPOSE)))
        flags.append(bool(opted_out))
    ids = np.array(numbers, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    return NationalResults(ids[order], np.array(flags, dtype=bool)[order])


def national_check_results_delete(*, check_ids: Iterable[int]) -> int:
    """Delete the compiled results of these checks (purged or destroyed); return how many."""
    deleted = 0
    for check_id in check_ids:
        name = _results_name(check_id)
        if default_storage.exists(name):
            default_storage.delete(name)
            deleted += 1
    return deleted


def national_check_results_exist(*, check_ids: Iterable[int]) -> bool:
    """Return whether compiled results of any of these checks are still stored."""
    return any(default_storage.exists(_results_name(pk)) for pk in check_ids)


def national_results_merged(*, checks: Sequence[NationalOptOutCheck]) -> HashedNumbers:
    """Return the results of these checks (newest first) merged, a patient's newest covering
    check deciding, as a hash table of the numbers covered and their opted-out flags.

    Merged and hashed once per process while the checks are the same (1M patients: about
    0.15 s, 16 MiB): a job asks about its new patients a few thousand at a time, which the
    table answers in about half the time of a binary search in the sorted numbers. The
    sorted arrays are not kept beside it (1M patients: 9 MiB each, in every worker).
    """
    for check in checks:
        if check.status != NationalOptOutCheck.Status.COMPLETE:
            raise NotAllowedNow(f"This check is {check.get_status_display().lower()}.")
    key = b"merged\n" + b"\n".join(_results_ad(check) for check in checks)
    hashed = _loaded.get(key)
    if hashed is None:
        merged = _merge_newest_first([national_check_results(check=c, keep=False) for c in checks])
        hashed = HashedNumbers(merged.numbers, merged.opted_out)
        _remember(key, hashed)
    return hashed


def _merge_newest_first(results: Sequence[NationalResults]) -> NationalResults:
    """Merge checks' results, newest first: a patient's newest covering check decides."""
    if len(results) == 1:
        return results[0]
    numbers = np.concatenate([r.numbers for r in results])
    flags = np.concatenate([r.opted_out for r in results])
    order = np.argsort(numbers, kind="stable")  # stable: the newest check's entry first
    numbers, flags = numbers[order], flags[order]
    first = np.ones(len(numbers), dtype=bool)
    first[1:] = numbers[1:] != numbers[:-1]
    return NationalResults(numbers[first], flags[first])


# --- the register ----------------------------------------------------------------------------
@dataclass
class RegisterResult:
    """Who of the numbers asked about must be left out of the flow, and why."""

    excluded: list[tuple[str, list[str]]] = field(default_factory=list)
    allowed: int = 0
    type1_applies: bool = True
    national_applies: bool = True
    national_exemption: str = ""
    national_check_id: int | None = None
    national_checked_on: dt.date | None = None
    national_expires_on: dt.date | None = None

    @property
    def counts(self) -> dict[str, int]:
        counts = {reason.value: 0 for reason in OptOutReason}
        for _, reasons in self.excluded:
            for reason in reasons:
                counts[reason] += 1
        return counts


@dataclass
class OptOutRegister:
    """The register of one data flow, loaded once, that answers many batches of numbers.

    type1: the NHS numbers with a current dissent (sorted int64); national: the merged
    results of the programme's unexpired checks, hashed (`national_results_merged`), or
    None where the national opt-out does not apply.
    """

    result: RegisterResult
    type1: np.ndarray
    national: HashedNumbers | None

    def exclusion_masks(self, ids: np.ndarray) -> dict[OptOutReason, np.ndarray]:
        """Return, for valid NHS numbers as integers, a mask of the numbers left out per reason.

        A number may be left out for Type 1 and for a national reason at once; at most one
        of the two national reasons holds.
        """
        ids = np.asarray(ids, dtype=np.int64)
        type1, _ = _look_up(self.type1, ids)
        if self.national is None:
            nothing = np.zeros(len(ids), dtype=bool)
            national = unchecked = nothing
        else:
            covered, national = self.national.look_up(ids)
            unchecked = ~covered
        return {
            OptOutReason.TYPE1: type1,
            OptOutReason.NATIONAL: national,
            OptOutReason.NATIONAL_UNCHECKED: unchecked,
        }

    def reasons_by_number(self, ids: np.ndarray) -> dict[int, list[str]]:
        """Return, for valid NHS numbers as integers, the reasons of those that may not flow."""
        masks = self.exclusion_masks(ids)
        ids = np.asarray(ids, dtype=np.int64)
        any_reason = np.zeros(len(ids), dtype=bool)
        for mask in masks.values():
            any_reason |= mask
        out: dict[int, list[str]] = {}
        for i in np.flatnonzero(any_reason).tolist():
            out[int(ids[i])] = [reason.value for reason, mask in masks.items() if mask[i]]
        return out

    # A pseudonymisation job's pipeline calls the register with its new numbers.
    __call__ = reasons_by_number

    def reasons(self, numbers: Iterable[str]) -> dict[str, list[str]]:
        """Return, for valid 10-digit numbers, the reasons each may not flow (none: absent)."""
        numbers = list(numbers)
        if not len(self.type1) and self.national is None:
            return {}  # nobody can be left out
        ids = np.array([int(n) for n in numbers], dtype=np.int64)
        by_id = self.reasons_by_number(ids)
        return {n: by_id[i] for n, i in zip(numbers, ids.tolist(), strict=True) if i in by_id}

    def unknown_reasons(self) -> list[str]:
        """Return the reasons given for a valid number the portal has never seen."""
        return [OptOutReason.NATIONAL_UNCHECKED.value] if self.national is not None else []

    def reasons_as_seen_by(
        self, reasons_of: dict[str, list[str]], indexes: dict[str, str], practice_ids: Sequence[int]
    ) -> dict[str, list[str]]:
        """Return `reasons_of` with every patient not registered at these practices unknown.

        indexes: {number: blind index} of every number asked about. A number of anyone
        else gets exactly the answer of a number the portal has never seen: the same
        reasons (or none), so neither another practice's Type 1, nor the national
        opt-out, nor being in the programme's cohort shows through. The work is the same
        whatever the answers (every number indexed, the practices' patients always
        read), so neither does the time a call takes.
        """
        unknown = self.unknown_reasons()
        mine = patient_indexes_registered_at(practice_ids)
        out: dict[str, list[str]] = {}
        for number, index in indexes.items():
            reasons = reasons_of.get(number, []) if index in mine else unknown
            if reasons:
                out[number] = list(reasons)
        return out


def opt_out_register_ready(*, data_flow: DataFlow) -> list[NationalOptOutCheck]:
    """Refuse (409) where the register of a data flow cannot be loaded now; otherwise
    return the national checks it would use, newest first (none where exempt).

    What `opt_out_register_for` checks, without loading anyone's numbers: for a caller
    that must refuse at once (a job asked for) and load the register later (its workers).
    """
    if not data_flow.is_approved:
        raise NotAllowedNow(
            f"The data flow is {data_flow.get_status_display().lower()}: no data moves on a "
            "flow that is not approved."
        )
    programme = data_flow.programme
    if not programme.national_opt_out_applies:
        return []
    checks = list(national_usable_checks(programme))
    if not checks:
        raise NotAllowedNow(
            f"The national data opt-out applies to {programme.name} and it has no unexpired "
            "national check. Start a national data opt-out check of the programme (the "
            "National checks page, or POST /api/v1/national-opt-outs/checks/ with "
            f'{{"programme": "{programme.slug}"}}) and import the national service\'s reply: '
            "data flows once the check is complete.",
            code=NATIONAL_CHECK_MISSING,
        )
    return checks


def opt_out_register_for(*, data_flow: DataFlow) -> OptOutRegister:
    """Load the register of a data flow: who may not flow on it, and why.

    1. The flow must be approved (409 otherwise): no data moves on any other.
    2. Type 1 (where the programme applies it): a current dissent at any GP practice
       taking part in the programme leaves the patient out, of every flow of it.
    3. National data opt-out (where the programme applies it): the newest unexpired
       check that submitted the patient decides; a patient whom no unexpired check
       covers is left out as "national_unchecked"; with no unexpired check at all the
       question is refused (409) until a new check is imported. Where the programme is
       exempt, the exemption is returned and nobody is left out on this ground.
    """
    checks = opt_out_register_ready(data_flow=data_flow)
    programme = data_flow.programme
    result = RegisterResult(
        type1_applies=programme.type1_opt_out_applies,
        national_applies=programme.national_opt_out_applies,
        national_exemption=""
        if programme.national_opt_out_applies
        else programme.national_opt_out_exemption,
    )
    national: HashedNumbers | None = None
    if checks:
        newest = checks[0]
        result.national_check_id = newest.pk
        result.national_checked_on = newest.checked_on
        result.national_expires_on = newest.expires_on
        national = national_results_merged(checks=checks)
    type1 = _EMPTY
    if programme.type1_opt_out_applies:
        type1 = type1_current_dissent_numbers(programme_practice_ids(programme))
    return OptOutRegister(result, type1, national)


def opt_out_register_check(
    *,
    data_flow: DataFlow,
    nhs_numbers: Sequence[object],
    practice_ids: Sequence[int] | None = None,
) -> RegisterResult:
    """Return which of these patients' data may not flow on this data flow, and why.

    With practice_ids (permissions.register_practice_ids_for), only patients registered
    at those practices are answered truly; every other number as an unknown one.
    """
    register = opt_out_register_for(data_flow=data_flow)
    numbers = normalise_many(nhs_numbers)
    distinct = sorted(set(numbers))
    reasons_of = register.reasons(distinct)
    if practice_ids is not None:
        index_of = blind_indexer()
        indexes = {number: index_of(number) for number in distinct}
        reasons_of = register.reasons_as_seen_by(reasons_of, indexes, practice_ids)
    result = register.result
    result.excluded = sorted(reasons_of.items())
    result.allowed = sum(1 for n in numbers if n not in reasons_of)
    return result
