"""The re-identification index: written by each chunk, read by re-identification."""

import io
import os

import pyarrow as pa
import pytest
from django.core.files.storage import default_storage

from datasets import reidentification, services
from datasets.models import JobChunk
from governance.models import Organisation
from phm_portal.lib.envelope import DecryptionFailed
from tests.datasets.conftest import upload_extract
from tests.datasets.test_jobs import ROWS, code_of, run_job

KEK = os.urandom(32)
AD = b"job:test:reidentify:0"


@pytest.fixture
def dataset(api, alice, flow, programme):
    programme.national_opt_out_applies = False  # exempt: no national check needed here
    programme.national_opt_out_exemption = "Section 251 support."
    programme.save()
    return upload_extract(api(alice), flow, ROWS)


def sealed_index(rows: list[tuple[str, str, str]]) -> io.BytesIO:
    builder = reidentification.IndexBuilder()
    codes, practices, numbers = zip(*rows, strict=True)
    builder.add(
        pa.table(
            {
                "pseudonym": pa.array(codes),
                "practice": pa.array(practices),
                "nhs_number": pa.array(numbers),
            }
        )
    )
    return io.BytesIO(builder.seal(KEK, AD))


def test_an_index_answers_a_code_only_for_the_practice_it_was_seen_at():
    a, b = "0a" + "1" * 30, "ff" + "2" * 30
    index = sealed_index([(a, "A81001", "9434765919"), (b, "B82002", "4010232137")])
    found = reidentification.look_up(KEK, index, AD, [a, b, "0a" + "3" * 30, "nonsense"], "A81001")
    assert found == {a: "9434765919"}
    index.seek(0)
    assert reidentification.look_up(KEK, index, AD, [a, b], "B82002") == {b: "4010232137"}
    index.seek(0)
    assert reidentification.look_up(KEK, index, AD, [a, b], "C83003") == {}


def test_a_patient_seen_at_two_practices_is_found_at_each():
    code = "7c" + "4" * 30
    index = sealed_index([(code, "A81001", "9434765919"), (code, "B82002", "9434765919")])
    for practice in ("A81001", "B82002"):
        index.seek(0)
        assert reidentification.look_up(KEK, index, AD, [code], practice) == {code: "9434765919"}


def test_an_index_holds_no_number_or_code_in_the_clear():
    code = "7c" + "4" * 30
    sealed = sealed_index([(code, "A81001", "9434765919")]).getvalue()
    assert b"9434765919" not in sealed and code.encode() not in sealed and b"A81001" not in sealed


def test_an_index_bound_to_another_part_does_not_open():
    index = sealed_index([("7c" + "4" * 30, "A81001", "9434765919")])
    with pytest.raises(DecryptionFailed):
        reidentification.look_up(KEK, index, b"job:test:reidentify:1", ["7c" + "4" * 30], "A81001")


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[:20], id="cut inside the header"),
        pytest.param(lambda b: b[: len(b) // 2], id="cut inside the parts"),
        pytest.param(lambda b: b[:-1], id="last byte cut"),
        # The part count raised by one: the offset table no longer fits what follows.
        pytest.param(
            lambda b: _with_count(b, _count(b) + 1), id="one part more than the file holds"
        ),
        pytest.param(lambda b: _with_count(b, 2**32 - 1), id="a huge part count"),
        pytest.param(lambda b: b"\x00" * len(b), id="zeros"),
    ],
)
def test_a_damaged_index_is_refused_as_damaged(damage):
    code = "7c" + "4" * 30
    sealed = sealed_index([(code, "A81001", "9434765919")]).getvalue()
    with pytest.raises(DecryptionFailed, match="damaged or was changed"):
        reidentification.look_up(KEK, io.BytesIO(damage(sealed)), AD, [code], "A81001")


def _count_at(sealed: bytes) -> int:
    """Offset of the part count: after the magic (8), the wrapped key's length (4) and key."""
    return 12 + int.from_bytes(sealed[8:12], "little")


def _count(sealed: bytes) -> int:
    return int.from_bytes(sealed[_count_at(sealed) : _count_at(sealed) + 4], "little")


def _with_count(sealed: bytes, count: int) -> bytes:
    at = _count_at(sealed)
    return sealed[:at] + count.to_bytes(4, "little") + sealed[at + 4 :]


def test_each_part_of_a_finished_job_has_its_index(admin, dataset):
    job = run_job(services.dataset_pseudonymise(actor=admin, dataset=dataset))
    for chunk in JobChunk.objects.filter(job=job):
        assert default_storage.exists(reidentification.index_name(job.pk, chunk.index))
        assert chunk.report["vault_rows"] > 0


def test_a_part_of_a_job_from_before_indexes_gets_one_when_first_needed(
    admin, alice, dataset, programme
):
    job = run_job(services.dataset_pseudonymise(actor=admin, dataset=dataset))
    chunk = JobChunk.objects.get(job=job)
    name = reidentification.index_name(job.pk, chunk.index)
    default_storage.delete(name)  # as a job run by an older release
    practice = Organisation.objects.get(ods_code="A81001")
    results, not_found = services.reidentify(
        actor=alice,
        practice=practice,
        programme=programme,
        codes=[code_of("9434765919", programme)],
    )
    assert results == [{"code": code_of("9434765919", programme), "nhs_number": "9434765919"}]
    assert not not_found
    assert default_storage.exists(name)


def vault_pairs_of(chunk: JobChunk) -> list[tuple[str, str]]:
    """Return the (NHS number, practice) pairs of a part's vault, as stored (decrypted)."""
    import csv

    from django.conf import settings

    from phm_portal.lib import envelope

    key = envelope.unwrap(settings.KEY_ENCRYPTION_KEY, bytes(chunk.vault_key))
    with default_storage.open(chunk.vault_file, "rb") as f:
        text = envelope.decrypting_reader(key, f, chunk.vault_associated_data).read().decode()
    return [(row["nhs_number"], row["practice"]) for row in csv.DictReader(io.StringIO(text))]


def reidentified(alice, programme, numbers: list[str]) -> list[str]:
    results, _ = services.reidentify(
        actor=alice,
        practice=Organisation.objects.get(ods_code="A81001"),
        programme=programme,
        codes=[code_of(n, programme) for n in numbers],
    )
    return [r["nhs_number"] for r in results]


@pytest.fixture
def repeated(api, alice, flow, programme, settings):
    """An extract whose first patient comes back in its last record, cut in one chunk per
    record (after one holding only the header)."""
    programme.national_opt_out_applies = False
    programme.national_opt_out_exemption = "Section 251 support."
    programme.save()
    settings.PHM_JOB_CHUNK_BYTES = 40
    return upload_extract(api(alice), flow, [ROWS[0], ROWS[1], ROWS[0]])


def test_the_parts_one_worker_publishes_hold_each_patient_once_and_all_are_found(
    admin, alice, programme, repeated
):
    job = run_job(services.dataset_pseudonymise(actor=admin, dataset=repeated))
    chunks = list(JobChunk.objects.filter(job=job).order_by("index"))
    # The last part leaves out the patient the first part, published, already holds.
    assert [vault_pairs_of(chunk) for chunk in chunks if chunk.report["rows_in"]] == [
        [("9434765919", "A81001")],
        [("4010232137", "B82002")],
        [],
    ]
    assert sum(chunk.report["vault_rows"] for chunk in chunks) == 2
    assert reidentified(alice, programme, ["9434765919"]) == ["9434765919"]


def test_a_part_that_was_not_published_leaves_its_patients_to_the_next(
    admin, alice, programme, repeated, monkeypatch
):
    job = services.dataset_pseudonymise(actor=admin, dataset=repeated)
    *header, first, second, third = services.job_start(job_id=job.pk)
    for chunk_id in header:
        services.job_chunk_run(chunk_id=chunk_id)
    run_range = services._run_range

    def taken_over(chunk, attempt, lease):
        result = run_range(chunk, attempt, lease)
        # Meanwhile another attempt took the chunk over: this one's part is not published.
        JobChunk.objects.filter(pk=chunk.pk).update(attempts=attempt + 1)
        return result

    monkeypatch.setattr(services, "_run_range", taken_over)
    services.job_chunk_run(chunk_id=first)
    monkeypatch.setattr(services, "_run_range", run_range)
    assert JobChunk.objects.get(pk=first).status == JobChunk.Status.RUNNING
    services.job_chunk_run(chunk_id=second)
    services.job_chunk_run(chunk_id=third)
    # The third part holds the first patient: the part that held it was thrown away.
    assert vault_pairs_of(JobChunk.objects.get(pk=third)) == [("9434765919", "A81001")]
    # The attempt that took the first chunk over (another process) publishes it.
    services._tables.clear()
    JobChunk.objects.filter(pk=first).update(status="pending")
    services.job_chunk_run(chunk_id=first)
    job = services.job_finish(job_id=job.pk)
    assert job.status == job.Status.SUCCEEDED
    assert reidentified(alice, programme, ["9434765919"]) == ["9434765919"]


def test_a_chunk_s_rows_by_slot_answer_as_the_rows_themselves():
    """A chunk gives the index its rows as slots of the job's table (no code copied): every
    code is found at its practice, as when the same rows are given as a table, and mixed
    with such a table (an older part's vault) too."""
    import numpy as np

    from datasets.pipeline.number_table import NumberTable
    from datasets.pipeline.vault import VaultPairs
    from phm_portal.lib.nhs_number import synthetic

    rng = __import__("random").Random(4)
    numbers = sorted({int(synthetic(rng)) for _ in range(3000)})
    table = NumberTable(b"k" * 32, lambda ids: {})
    pairs = VaultPairs()
    practices = [f"P{i:05d}" for i in range(7)]
    by_slot, as_table = reidentification.IndexBuilder(), reidentification.IndexBuilder()
    expected: dict[tuple[str, str], str] = {}
    for block in range(3):  # the job's list of practices grows from one block to the next
        ids = np.array(rng.choices(numbers, k=2000), dtype=np.int64)
        slots = table.slots(ids)
        practice = pa.chunked_array([pa.array(rng.choices(practices[: 3 + 2 * block], k=2000))])
        rows = pairs.new_rows(table, slots, practice)
        by_slot.add_rows(rows)
        as_table.add(rows.table())
        for code, where, number in zip(*rows.table().to_pydict().values(), strict=True):
            expected[code, where] = number
    assert by_slot.rows == as_table.rows == len(expected)
    mixed = reidentification.IndexBuilder()
    mixed.add_rows(rows)
    mixed.add(
        pa.table(
            {"pseudonym": ["ab" + "5" * 30], "practice": ["Z99999"], "nhs_number": ["9434765919"]}
        )
    )
    codes = sorted({code for code, _ in expected})
    for builder in (by_slot, as_table):
        sealed = builder.seal(KEK, AD)
        for practice in practices:
            found = reidentification.look_up(KEK, io.BytesIO(sealed), AD, codes, practice)
            assert found == {c: n for (c, p), n in expected.items() if p == practice}
    sealed = mixed.seal(KEK, AD)
    assert reidentification.look_up(KEK, io.BytesIO(sealed), AD, ["ab" + "5" * 30], "Z99999") == {
        "ab" + "5" * 30: "9434765919"
    }
    last = rows.table().to_pydict()
    found = reidentification.look_up(
        KEK, io.BytesIO(sealed), AD, last["pseudonym"][:50], last["practice"][0]
    )
    assert found and all(
        expected[code, last["practice"][0]] == number for code, number in found.items()
    )
