"""Every write of the datasets app: uploads, pseudonymisation jobs, re-identification."""

from __future__ import annotations

import bisect
import datetime as dt
import io
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from datasets import reidentification, selectors
from datasets.models import Dataset, Job, JobChunk, ProgrammeKey
from datasets.pipeline import framing, orchestration
from datasets.pipeline.mapping import Mapping, MissingColumn, read_header
from datasets.pipeline.number_table import NumberTable
from datasets.pipeline.report import (
    MAX_INVALID_REPORTED,
    ExtractError,
    JobCancelled,
    no_rows_excluded,
)
from datasets.pipeline.vault import VaultPairs
from datasets.uploads import EncryptedUpload
from governance.models import DataFlow, Organisation, Programme, User
from phm_portal.audit import audit_log
from phm_portal.errors import InvalidInput, NotAllowedNow
from phm_portal.lib import envelope, nhs_number, upload_checks

log = logging.getLogger(__name__)


# --- keys ------------------------------------------------------------------------
def programme_key(*, programme: Programme) -> bytes:
    """Return the programme's pseudonymisation key, making it on first use."""
    if programme.status == Programme.Status.DESTROYED:
        raise NotAllowedNow(
            "The programme's data and keys were destroyed: nothing can be coded or decoded."
        )
    record = ProgrammeKey.objects.filter(programme=programme).first()
    if record is None:
        secret = os.urandom(32)
        wrapped = _wrap(secret)
        try:
            with transaction.atomic():
                record = ProgrammeKey.objects.create(programme=programme, wrapped_key=wrapped)
                audit_log(
                    actor=None,
                    action="programme.key_created",
                    obj=programme,
                    details={"key_id": str(record.key_id)},
                )
        except IntegrityError:  # another worker made it first
            record = ProgrammeKey.objects.get(programme=programme)
    return _unwrap(bytes(record.wrapped_key))


_PROGRAMME_KEY_PURPOSE = b"phm-portal programme key v1"


def _suspension_words(flow: DataFlow) -> str:
    """Return why a suspended flow stopped (the lapse the assurance watch found), or nothing."""
    if flow.status == DataFlow.Status.SUSPENDED and flow.suspension_reason:
        return f" {flow.suspension_reason}"
    return ""


def _wrap(secret: bytes) -> bytes:
    return envelope.wrap_secret(settings.KEY_ENCRYPTION_KEY, secret, _PROGRAMME_KEY_PURPOSE)


def _unwrap(wrapped: bytes) -> bytes:
    return envelope.unwrap_secret(settings.KEY_ENCRYPTION_KEY, wrapped, _PROGRAMME_KEY_PURPOSE)


# --- uploads -----------------------------------------------------------------------
def dataset_upload(
    *,
    actor: User,
    data_flow: DataFlow,
    upload: EncryptedUpload,
    mapping: object,
    keep_if_mapping_refused: bool = False,
) -> Dataset:
    """Store an encrypted extract on an approved flow, after checking its header and mapping.

    The upload is already encrypted on disk (datasets.uploads); on any refusal it is deleted,
    except, if asked, when only the mapping was refused (field "mapping"): the caller keeps it.
    """
    keep = False
    try:
        if not data_flow.is_approved:
            raise NotAllowedNow(
                f"Data may move only on an approved flow; this one is {data_flow.get_status_display().lower()}."
                + _suspension_words(data_flow)
            )
        if not data_flow.programme.is_open:
            raise NotAllowedNow(
                f"The programme has {data_flow.programme.get_status_display().lower()}."
            )
        if upload.size == 0:
            raise InvalidInput("The file is empty.", field="file")
        problem = upload_checks.kind_problem(upload.head)
        if problem is not None:
            raise InvalidInput(problem, field="file")
        try:
            header = read_header(upload.head.split(b"\n", 1)[0] + b"\n")
        except UnicodeDecodeError:
            raise InvalidInput(
                "The file is not UTF-8 text (a CSV extract is expected).", field="file"
            ) from None
        except ValueError as exc:
            raise InvalidInput(f"Line 1: {exc}", field="file") from None
        if b"\n" not in upload.head and upload.size > len(upload.head):
            raise InvalidInput("Line 1: the header line is longer than 64 KiB.", field="file")
        try:
            parsed = Mapping.from_json(mapping)
            parsed.check_columns(header)
        except MissingColumn as exc:
            raise InvalidInput(
                f"{exc} The file's columns are: {', '.join(exc.header)}.",
                field="mapping",
                details={"column": exc.column, "columns": exc.header},
            ) from None
        except ValueError as exc:
            raise InvalidInput(str(exc), field="mapping") from None
        name = f"datasets/{upload.id}.csv.enc"
        with open(upload.path, "rb") as encrypted:
            stored = default_storage.save(name, File(encrypted))
    except InvalidInput as exc:
        keep = keep_if_mapping_refused and exc.field == "mapping"
        raise
    finally:
        if not keep:
            upload.discard()
    dataset = Dataset(
        id=upload.id,
        data_flow=data_flow,
        uploaded_by=actor,
        original_name=upload.name,
        columns=header,
        mapping=parsed.to_json(),
        sha256=upload.sha256,
        bytes=upload.size,
        file=stored,
        wrapped_key=upload.wrapped_key,
        segments=upload.segments,
        record_starts=upload.record_starts,
    )
    try:
        with transaction.atomic():
            dataset.save()
            audit_log(
                actor=actor,
                action="dataset.uploaded",
                obj=dataset,
                details={"data_flow": data_flow.pk, "bytes": upload.size, "sha256": upload.sha256},
            )
    except Exception:
        default_storage.delete(stored)
        raise
    if data_flow.programme.national_opt_out_applies:
        transaction.on_commit(lambda: _send_note_patients(dataset.pk))
    return dataset


def _send_note_patients(dataset_id) -> bool:
    """Queue the noting of an extract's patients; the upload stands if the queue is away."""
    from datasets.tasks import dataset_note_patients

    try:
        dataset_note_patients.delay(str(dataset_id))
    except Exception as exc:  # kombu's OperationalError, socket errors: the broker is away
        log.warning("The task queue did not take the patients of extract %s: %s", dataset_id, exc)
        return False
    return True


NOTE_BATCH = 50_000  # numbers noted in one transaction


def dataset_note_patients(*, dataset_id) -> int:
    """Add an extract's patients to the cohorts of its programme's practices; return how many.

    A national data opt-out check submits the programme's cohort; a patient no unexpired
    check covers is left out of every job of a programme the national opt-out applies
    to. So the patients of such an extract join the cohort of the practice each row
    names, when that practice takes part in the programme (others are ignored), ready for
    the next check. Runs in a worker after the upload.
    """
    from consent import services as consent
    from consent.selectors import programme_practice_ids

    dataset = Dataset.objects.select_related("data_flow__programme", "uploaded_by").get(
        pk=dataset_id
    )
    programme = dataset.data_flow.programme
    if not programme.national_opt_out_applies or dataset.status == Dataset.Status.DESTROYED:
        return 0
    practices = {
        o.ods_code.upper(): o
        for o in Organisation.objects.filter(pk__in=programme_practice_ids(programme))
    }
    plain, _ = _open_dataset_at(dataset, 0)
    try:
        with plain:
            found = orchestration.patients_by_practice(
                plain, header=dataset.columns, mapping=Mapping.from_json(dataset.mapping)
            )
    except (ExtractError, envelope.DecryptionFailed) as exc:
        # The job on this extract will say so in plain words; nobody is noted meanwhile.
        log.warning("The patients of extract %s could not be read: %s", dataset.pk, exc)
        return 0
    noted = 0
    for code, numbers in sorted(found.items()):
        practice = practices.get(code)
        if practice is None:
            continue
        texts = [t.decode() for t in nhs_number.texts(numbers)]
        for start in range(0, len(texts), NOTE_BATCH):
            noted += consent.patients_note_at_practice(
                actor=dataset.uploaded_by,
                practice=practice,
                nhs_numbers=texts[start : start + NOTE_BATCH],
                programme=dataset.data_flow.programme,
            )
    return noted


def _open_dataset_at(dataset: Dataset, position: int) -> tuple[BinaryIO, int]:
    """Open the plaintext of an extract at the start of the segment holding `position`.

    Return the stream and the plaintext offset where it starts.
    """
    if dataset.status == Dataset.Status.DESTROYED:
        raise NotAllowedNow("This extract was destroyed with its programme's data.")
    key = envelope.unwrap(settings.KEY_ENCRYPTION_KEY, bytes(dataset.wrapped_key))
    source = default_storage.open(dataset.file, "rb")
    segments = dataset.segments
    if not segments:  # one stream: read from the start
        return envelope.decrypting_reader(key, source, dataset.associated_data), 0
    starts = [s["start"] for s in segments]
    first = max(0, bisect.bisect_right(starts, position) - 1)
    # Unbuffered: its readers take large blocks and short reads (framing.iter_blocks).
    reader = envelope.segmented_reader(
        key,
        source,
        dataset.associated_data,
        [(s["offset"], s["length"]) for s in segments],
        first,
        buffered=False,
    )
    return reader, starts[first]


def _record_starts(dataset: Dataset) -> list[list[int]]:
    """Return where the extract's records start (kept at upload).

    An extract stored before they were kept has them found now, once, by the same rule.
    """
    if not dataset.record_starts:
        try:
            plain, _ = _open_dataset_at(dataset, 0)
            with plain:
                starts = framing.record_starts(plain)
        except envelope.DecryptionFailed:
            return [[0, 0]]  # one chunk, whose job then says the file cannot be read
        Dataset.objects.filter(pk=dataset.pk).update(record_starts=starts)
        dataset.record_starts = starts
    return dataset.record_starts


# --- jobs ---------------------------------------------------------------------------
def dataset_pseudonymise(*, actor: User, dataset: Dataset) -> Job:
    """Queue the pseudonymisation of an extract; asking again while one is active returns it.

    A large extract is cut into byte ranges of PHM_JOB_CHUNK_BYTES, run in parallel.
    """
    active = dataset.jobs.filter(status__in=Job.ACTIVE).first()
    if active is not None:
        return active
    flow = dataset.data_flow
    if not flow.is_approved:
        raise NotAllowedNow(
            f"The flow is {flow.get_status_display().lower()}: no data moves on it now."
            + _suspension_words(flow)
        )
    if dataset.status == Dataset.Status.DESTROYED:
        raise NotAllowedNow("This extract was destroyed with its programme's data.")
    if not flow.programme.is_open:
        # Destruction waits for running jobs; once a programme has ended none may start.
        raise NotAllowedNow(
            f"The programme has {flow.programme.get_status_display().lower()}: "
            "no extract of it is pseudonymised any more."
        )
    # Refuses now (409) if, say, the national opt-out check has expired; the workers load
    # the register itself.
    from consent.register import opt_out_register_ready

    opt_out_register_ready(data_flow=flow)
    chunk_bytes = max(1, settings.PHM_JOB_CHUNK_BYTES)
    ranges = framing.record_ranges(
        _record_starts(dataset), dataset.bytes, -(-dataset.bytes // chunk_bytes)
    )
    try:
        with transaction.atomic():
            job = Job.objects.create(
                dataset=dataset, requested_by=actor, reference_date=dataset.uploaded_at.date()
            )
            JobChunk.objects.bulk_create(
                JobChunk(job=job, index=i, start=start, end=end)
                for i, (start, end, _) in enumerate(ranges)
            )
            audit_log(
                actor=actor,
                action="job.queued",
                obj=dataset,
                details={"job": str(job.id), "chunks": len(ranges)},
            )
            transaction.on_commit(lambda: _send_start(job.pk))
    except IntegrityError:  # two clicks at once: the other made the active job
        return dataset.jobs.get(status__in=Job.ACTIVE)
    return job


def _send_start(job_id) -> bool:
    """Hand the job's start message to the task queue; return whether it took it.

    When the broker cannot be reached the job stays queued, shown as waiting for the task
    queue, and jobs_resend_queued sends it again later: the request that queued it does
    not fail, and nothing is lost.
    """
    from datasets.tasks import job_start

    try:
        job_start.delay(str(job_id))
    except Exception as exc:  # kombu's OperationalError, socket errors: the broker is away
        log.warning("The task queue did not take job %s (it waits): %s", job_id, exc)
        return False
    Job.objects.filter(pk=job_id).update(start_sent_at=timezone.now())
    return True


# A job never sent is left alone this long after it was queued: the request that queued
# it may still be sending it.
RESEND_GRACE = dt.timedelta(seconds=10)


def jobs_recover(*, limit: int = 500) -> dict[str, int]:
    """Beat's round over what lost messages and dead workers left behind; return counts.

    Whatever the broker (the embedded one deletes a message as it is read, so a worker
    killed whole takes its messages with it; Redis gives them back only after its
    visibility timeout), the database says what is unfinished:

    1. Queued jobs whose start never reached the task queue, or was not claimed: sent again.
    2. Jobs being cancelled: chunks no live worker holds are cancelled, and the job ends
       once none runs (parts and temporary files deleted, audited).
    3. Chunks of other running jobs that no live worker holds (running with an expired
       lease, or pending and sent a lease ago without being claimed): sent again, each
       on its own, outside the job's chord.
    4. Running jobs none of whose chunks is pending or running (the chord's callback
       died with its worker, or chunks were sent again outside the chord): finished,
       published exactly once.

    Safe to repeat; duplicates are harmless: jobs, chunks and the publication are
    claimed with conditional updates.
    """
    counts = {"queued_sent": jobs_resend_queued(limit=limit)}
    cancelling = Job.objects.filter(status__in=Job.ACTIVE, cancel_requested=True).order_by(
        "created_at"
    )
    counts["cancelled"] = sum(
        _job_cancel_settle(job_id=job_id).status == Job.Status.CANCELLED
        for job_id in list(cancelling.values_list("pk", flat=True)[:limit])
    )
    counts["chunks_sent"] = _chunks_resend(limit=limit)
    orphans = (
        Job.objects.filter(status=Job.Status.RUNNING, cancel_requested=False)
        .exclude(chunks__status__in=[JobChunk.Status.PENDING, JobChunk.Status.RUNNING])
        .order_by("created_at")
    )
    counts["finished"] = sum(
        job_finish(job_id=job_id).status not in Job.ACTIVE
        for job_id in list(orphans.values_list("pk", flat=True)[:limit])
    )
    if any(counts.values()):
        log.info("Jobs recovered: %s", counts)
    return counts


def jobs_resend_queued(*, limit: int = 500) -> int:
    """Send again the start of queued jobs whose message never reached the task queue, or
    was sent PHM_JOB_RESEND_AFTER_SECONDS ago and no worker claimed the job (the broker
    may have lost it). Return how many were sent; stop at the first the queue refuses.

    Safe to repeat: a worker claims a job with a conditional update, so a job started
    twice runs once.
    """
    now = timezone.now()
    due = (
        Job.objects.filter(status=Job.Status.QUEUED, cancel_requested=False)
        .filter(
            Q(start_sent_at__isnull=True, created_at__lt=now - RESEND_GRACE)
            | Q(start_sent_at__lt=now - dt.timedelta(seconds=settings.PHM_JOB_RESEND_AFTER_SECONDS))
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    sent = 0
    for job_id in list(due):
        if not _send_start(job_id):
            break
        sent += 1
    if sent:
        log.info("Sent the start of %d queued job(s) again.", sent)
    return sent


def _chunks_resend(*, limit: int) -> int:
    """Send again, each on its own, the chunks of running jobs that no live worker holds.

    A chunk is sent again when its last message went out a lease ago and it is still
    pending (the message may have died with a worker) or running with an expired lease
    (its worker died). Return how many were sent; stop at the first the queue refuses.
    """
    from datasets.tasks import job_chunk_run

    now = timezone.now()
    lease = dt.timedelta(seconds=settings.PHM_JOB_LEASE_SECONDS)
    due = (
        JobChunk.objects.filter(job__status=Job.Status.RUNNING, job__cancel_requested=False)
        .filter(
            Q(status=JobChunk.Status.PENDING)
            | Q(status=JobChunk.Status.RUNNING, lease_until__lt=now)
        )
        .filter(Q(sent_at__isnull=True) | Q(sent_at__lt=now - lease))
        .order_by("job__created_at", "index")
        .values_list("pk", flat=True)[:limit]
    )
    sent = 0
    for chunk_id in list(due):
        try:
            job_chunk_run.delay(chunk_id)
        except Exception as exc:  # kombu's OperationalError, socket errors: the broker is away
            log.warning("The task queue did not take chunk %s (sent later): %s", chunk_id, exc)
            break
        JobChunk.objects.filter(pk=chunk_id).update(sent_at=timezone.now())
        sent += 1
    return sent


# A working chunk renews its lease about every second (datasets.pipeline's blocks); one
# that has not for this long when its job is cancelled has died with its worker.
CANCEL_GRACE = dt.timedelta(seconds=10)


def job_cancel(*, actor: User, job: Job) -> Job:
    """Stop an active job: nothing of it is published, its parts are deleted.

    1. Claim the cancellation (a conditional update): asking again while it is under way
       returns the job; a job that has ended is refused.
    2. Pending chunks are cancelled at once. A running chunk's worker sees the
       cancellation when it next renews its lease (about every second) and stops; the
       lease of a running chunk is cut to CANCEL_GRACE, so one whose worker died is
       cancelled by beat's next round once that has passed.
    3. Once no chunk runs, the job is cancelled: parts and temporary files deleted,
       audited (job.cancelled). With no chunk running that is at once.
    """
    now = timezone.now()
    with transaction.atomic():
        claimed = Job.objects.filter(
            pk=job.pk, status__in=Job.ACTIVE, cancel_requested=False
        ).update(cancel_requested=True)
        if claimed:
            grace = now + min(CANCEL_GRACE, dt.timedelta(seconds=settings.PHM_JOB_LEASE_SECONDS))
            JobChunk.objects.filter(
                job=job, status=JobChunk.Status.RUNNING, lease_until__gt=grace
            ).update(lease_until=grace)
            audit_log(
                actor=actor,
                action="job.cancel_requested",
                obj=job.dataset,
                details={"job": str(job.pk)},
            )
    if not claimed:
        job.refresh_from_db()
        if job.status in Job.ACTIVE:
            return job
        raise NotAllowedNow(
            f"The job has already {job.get_status_display().lower()}; there is nothing to cancel."
        )
    return _job_cancel_settle(job_id=job.pk)


def programme_jobs_cancel(*, actor: User, programme: Programme) -> list[Job]:
    """Cancel every queued or running job of the programme (before its destruction); return
    them. One that ended meanwhile is left out."""
    cancelled = []
    for job in selectors.programme_active_jobs(programme):
        try:
            cancelled.append(job_cancel(actor=actor, job=job))
        except NotAllowedNow:
            continue
    return cancelled


def _job_cancel_settle(*, job_id) -> Job:
    """Cancel the chunks of a job being cancelled that no live worker holds (pending, or
    running with an expired lease); end the job once none runs. Return the job."""
    JobChunk.objects.filter(job_id=job_id).filter(
        Q(status=JobChunk.Status.PENDING)
        | Q(status=JobChunk.Status.RUNNING, lease_until__lt=timezone.now())
    ).update(status=JobChunk.Status.CANCELLED, lease_until=None)
    return job_finish(job_id=job_id)


def job_start(*, job_id) -> list[int]:
    """Claim a queued job (or resume a running one); return the ids of chunks still to run.

    The chunks are marked as sent now: the caller sends them (a chord) at once.
    """
    now = timezone.now()
    with transaction.atomic():
        Job.objects.filter(pk=job_id, status=Job.Status.QUEUED, cancel_requested=False).update(
            status=Job.Status.RUNNING, started_at=now
        )
        job = Job.objects.get(pk=job_id)
        if job.status != Job.Status.RUNNING or job.cancel_requested:
            return []
        to_run = job.chunks.filter(status__in=[JobChunk.Status.PENDING, JobChunk.Status.RUNNING])
        chunk_ids = list(to_run.values_list("pk", flat=True))
        JobChunk.objects.filter(pk__in=chunk_ids).update(sent_at=now)
    return chunk_ids


class ChunkBusy(Exception):
    """Another worker holds the chunk's lease; try again when it may have expired."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"chunk leased for {seconds:.0f}s more")
        self.seconds = seconds


def job_chunk_run(*, chunk_id: int) -> None:
    """Process one byte range of a job's extract into an encrypted output part.

    1. Claim the chunk with a lease (pending, or running with an expired lease: its
       worker died). A chunk already done returns at once.
    2. Stream: decrypt the extract, read whole records of the range, pseudonymise,
       encrypt the part and the vault to temporary files, renewing the lease per block.
    3. Publish the part only if this attempt still holds the chunk.
    """
    now = timezone.now()
    lease = dt.timedelta(seconds=settings.PHM_JOB_LEASE_SECONDS)
    chunk = JobChunk.objects.select_related("job__dataset__data_flow__programme").get(pk=chunk_id)
    if chunk.status in (JobChunk.Status.DONE, JobChunk.Status.FAILED, JobChunk.Status.CANCELLED):
        return
    claimed = JobChunk.objects.filter(pk=chunk_id, status=JobChunk.Status.PENDING).update(
        status=JobChunk.Status.RUNNING,
        lease_until=now + lease,
        attempts=F("attempts") + 1,
        bytes_done=0,
    ) or JobChunk.objects.filter(
        pk=chunk_id, status=JobChunk.Status.RUNNING, lease_until__lt=now
    ).update(lease_until=now + lease, attempts=F("attempts") + 1, bytes_done=0)
    if not claimed:
        chunk.refresh_from_db()
        if chunk.status == JobChunk.Status.RUNNING and chunk.lease_until:
            raise ChunkBusy(max(1.0, (chunk.lease_until - now).total_seconds()))
        return
    # Only what the claim changed, and the job's state: the extract's row, loaded with the
    # chunk, is not fetched again (its record starts are long).
    chunk.refresh_from_db(fields=["status", "attempts", "lease_until", "bytes_done"])
    attempt = chunk.attempts
    job = chunk.job
    job.refresh_from_db(fields=["status", "cancel_requested"])
    if job.status != Job.Status.RUNNING or job.cancel_requested:
        _chunk_stop(chunk, attempt, JobChunk.Status.CANCELLED)
        return
    try:
        report, parts, pairs = _run_range(chunk, attempt, lease)
    except JobCancelled:
        _chunk_stop(chunk, attempt, JobChunk.Status.CANCELLED)
        return
    except _LostLease:
        return
    except (ExtractError, envelope.DecryptionFailed, NotAllowedNow) as exc:
        _chunk_fail(chunk, attempt, str(exc))
        return
    except Exception:
        log.exception("chunk %s of job %s failed", chunk.index, job.pk)
        _chunk_fail(
            chunk,
            attempt,
            "An unexpected error stopped the job; the technical team has the details in the log.",
        )
        return
    with transaction.atomic():
        won = JobChunk.objects.filter(
            pk=chunk.pk, status=JobChunk.Status.RUNNING, attempts=attempt
        ).update(
            status=JobChunk.Status.DONE,
            report=report,
            lease_until=None,
            bytes_done=chunk.end - chunk.start,
            **parts,
        )
    if not won:
        for name in {
            parts["output_file"],
            parts["vault_file"],
            *_part_names(chunk.job_id, chunk.index),
        }:
            default_storage.delete(name)
        return
    # The part is published: the chunks this process runs next need not repeat its pairs.
    memory = _tables.get(chunk.job_id)
    if memory is not None:
        memory.vault_pairs = pairs


def job_chunk_ended(*, chunk_id: int) -> None:
    """Publish the job of a chunk just run if none of its chunks is left to run.

    The task that ends a job's last chunk publishes the job at once, instead of waiting
    for the chord's callback (the database result backend learns that every chunk is
    done only when it next polls, up to CELERY_RESULT_CHORD_RETRY_INTERVAL later); the
    callback then finds the job published (job_finish is claimed once).
    """
    job_id = JobChunk.objects.filter(pk=chunk_id).values_list("job_id", flat=True).first()
    chunks = JobChunk.objects.filter(job_id=job_id)
    if job_id is None or chunks.filter(status=JobChunk.Status.PENDING).exists():
        return
    # No chunk of the job is left for this process to take: its table of the job's numbers
    # is let go (a chunk sent again after a failure builds it anew).
    _tables.pop(job_id, None)
    if not chunks.filter(status=JobChunk.Status.RUNNING).exists():
        job_finish(job_id=job_id)


class _LostLease(Exception):
    """Another attempt took the chunk over: this one stops without publishing."""


def _run_range(chunk: JobChunk, attempt: int, lease: dt.timedelta) -> tuple[dict, dict, VaultPairs]:
    job = chunk.job
    dataset = job.dataset
    flow = dataset.data_flow
    memory = _job_memory(job, flow)
    table = memory.table
    # This range's vault leaves out the pairs of the parts this process published for the
    # job; its own are added to a copy, which becomes the process's once it is published.
    pairs = memory.vault_pairs.copy()
    tmp = Path(settings.FILE_UPLOAD_TEMP_DIR)
    output_key = envelope.new_data_key(settings.KEY_ENCRYPTION_KEY)
    vault_key = envelope.new_data_key(settings.KEY_ENCRYPTION_KEY)
    stem = f"{job.pk}-{chunk.index}-{attempt}"
    out_path, vault_path = tmp / f"{stem}.part.enc", tmp / f"{stem}.vault.enc"
    index_path = tmp / f"{stem}.index.enc"
    # A worker that died mid-chunk left its temporary ciphertext (unreadable: its data key
    # died with it); this attempt owns the chunk now, so it clears them away.
    for stale in tmp.glob(f"{job.pk}-{chunk.index}-*"):
        if stale.name.split(".")[0] != stem:
            stale.unlink(missing_ok=True)
    state = {"last": timezone.now()}

    def progress(done: int) -> None:
        now = timezone.now()
        if (now - state["last"]).total_seconds() < 1:
            return
        state["last"] = now
        alive = JobChunk.objects.filter(
            pk=chunk.pk, status=JobChunk.Status.RUNNING, attempts=attempt
        ).update(bytes_done=min(done, chunk.end - chunk.start), lease_until=now + lease)
        if not alive:
            raise _LostLease
        if Job.objects.filter(pk=job.pk, cancel_requested=True).exists():
            raise JobCancelled

    plain, offset = _open_dataset_at(dataset, chunk.start)
    try:
        with (
            plain,
            _PartFile(out_path, "wb") as out_file,
            _PartFile(vault_path, "wb") as vault_file,
            _PartFile(index_path, "wb") as index_file,
        ):
            ranged = framing.RangeReader(
                plain,
                chunk.start,
                chunk.end,
                offset=offset,
                first_line=framing.line_at(_record_starts(dataset), chunk.start),
            )
            sink = envelope.encrypting_writer(output_key, out_file, chunk.associated_data)
            vault = envelope.encrypting_writer(vault_key, vault_file, chunk.vault_associated_data)
            index = reidentification.IndexBuilder()
            report = orchestration.pseudonymise(
                ranged,
                sink,
                vault,
                header=dataset.columns,
                mapping=Mapping.from_json(dataset.mapping),
                key=table.key,
                exclusions=table.exclusions,
                table=table,
                reference_date=job.reference_date,
                progress=progress,
                has_header=chunk.index == 0,
                first_line=ranged.first_line,
                write_header=chunk.index == 0,
                vault_rows=index.add_rows,
                vault_pairs=pairs,
            )
            sink.close()
            vault.close()
            # The index is sealed while the part's last pages go to the disk; then the
            # three are waited for, all before the part is published.
            _leave_page_cache(out_file.fileno())
            _leave_page_cache(vault_file.fileno())
            _index_write(job.pk, chunk.index, index, index_file)
            for written in (out_file, vault_file, index_file):
                _settle(written)
        output_bytes = out_path.stat().st_size
        output_name, vault_name, index_name = _part_names(job.pk, chunk.index)
        output_name = _replace_in_storage(output_name, out_path)
        vault_name = _replace_in_storage(vault_name, vault_path)
        _replace_in_storage(index_name, index_path)
    finally:
        for path in (out_path, vault_path, index_path):
            path.unlink(missing_ok=True)
    return (
        {
            "rows_in": report.rows_in,
            "rows_out": report.rows_out,
            "excluded": report.excluded,
            "invalid_rows": report.invalid_rows,
            "vault_rows": index.rows,
        },
        {
            "output_file": output_name,
            "output_key": output_key.wrapped,
            "vault_file": vault_name,
            "vault_key": vault_key.wrapped,
            "output_bytes": output_bytes,
        },
        pairs,
    )


@dataclass
class _JobMemory:
    """What a worker process keeps of the job it works on, from one chunk to the next."""

    table: NumberTable  # each patient hashed and asked of the register once
    vault_pairs: VaultPairs  # the pairs of the parts this process published for the job


# This worker process's memory of the job it works on (one job at a time).
_tables: dict = {}


def _job_memory(job: Job, flow: DataFlow) -> _JobMemory:
    if not flow.is_approved:
        raise NotAllowedNow(
            f"The flow is {flow.get_status_display().lower()}: no data moves on it now."
            + _suspension_words(flow)
        )
    memory = _tables.get(job.pk)
    if memory is None:
        _tables.clear()
        table = NumberTable(programme_key(programme=flow.programme), _register_for(flow))
        memory = _tables[job.pk] = _JobMemory(table, VaultPairs())
    return memory


class _FinishedTemporaryFile(File):
    """A finished temporary file: a local storage moves it into place instead of copying
    it (Django's temporary_file_path protocol); another storage reads it as usual."""

    def temporary_file_path(self) -> str:
        return self.name


class _PartFile(io.FileIO):
    """A temporary part being written, sent on its way to the disk as it grows.

    Every WRITE_BEHIND_BYTES, the pages written so far start going to the disk and those
    already there leave the page cache (POSIX_FADV_DONTNEED does both), so that `_settle`
    finds little left to wait for and a part reuses its own pages as it is written.
    """

    WRITE_BEHIND_BYTES = 8 * 1024 * 1024

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._since = 0

    def write(self, b) -> int:
        written = super().write(b)
        self._since += written or 0
        if self._since >= self.WRITE_BEHIND_BYTES:
            _leave_page_cache(self.fileno())
            self._since = 0
        return written


def _leave_page_cache(descriptor: int) -> None:
    """Start writing a file's dirty pages to the disk and drop those already there."""
    if hasattr(os, "posix_fadvise"):  # Linux; elsewhere the pages are left to the system
        os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)


def _settle(file: BinaryIO) -> None:
    """Make a finished temporary file durable before its part is published, then drop its
    pages from the page cache.

    A part marked done must survive a crash of the machine. And nobody reads a part soon:
    left in the cache, every part of every job would take memory the system had not used
    yet (on a virtual machine the host must first give each such page, which costs more
    than writing it), where the next part's writes now reuse the pages just freed.
    """
    file.flush()
    descriptor = file.fileno()
    getattr(os, "fdatasync", os.fsync)(descriptor)
    _leave_page_cache(descriptor)


def _replace_in_storage(name: str, path: Path) -> str:
    if default_storage.exists(name):
        default_storage.delete(name)
    with open(path, "rb") as f:
        return default_storage.save(name, _FinishedTemporaryFile(f, name=str(path)))


def _register_for(flow: DataFlow):
    """Return the function that says which NHS numbers may not flow on this flow, and why.

    The register is loaded once (409 if, say, the national check has expired); the
    pipeline then asks it about each batch of new, already validated numbers, as
    integers, with vectorised look-ups (`exclusion_masks`).
    """
    from consent.register import opt_out_register_for

    return opt_out_register_for(data_flow=flow)


def _chunk_stop(chunk: JobChunk, attempt: int, status: str) -> None:
    JobChunk.objects.filter(pk=chunk.pk, status=JobChunk.Status.RUNNING, attempts=attempt).update(
        status=status, lease_until=None
    )


def _chunk_fail(chunk: JobChunk, attempt: int, message: str) -> None:
    # Only while this attempt still holds the chunk: one cancelled under it fails nothing.
    with transaction.atomic():
        if JobChunk.objects.filter(
            pk=chunk.pk, status=JobChunk.Status.RUNNING, attempts=attempt
        ).update(status=JobChunk.Status.FAILED, lease_until=None, report={"error": message}):
            Job.objects.filter(pk=chunk.job_id, status=Job.Status.RUNNING).update(
                status=Job.Status.FAILED, error=message, finished_at=timezone.now()
            )
            audit_log(
                actor=None,
                action="job.failed",
                obj=chunk.job.dataset,
                details={"job": str(chunk.job_id), "error": message},
            )


def job_finish(*, job_id) -> Job:
    """Merge the chunks' reports in order and publish the job once (succeeded, failed or
    cancelled), when none of its chunks is pending or running any more.

    Whoever calls first (the chord's callback, beat's recover round, a cancellation)
    claims the job's transition with a conditional update; the others find it done.
    """
    job = Job.objects.get(pk=job_id)
    if job.status not in Job.ACTIVE:
        return job
    chunks = list(job.chunks.order_by("index"))
    statuses = {c.status for c in chunks}
    if statuses & {JobChunk.Status.PENDING, JobChunk.Status.RUNNING}:
        return job  # a chunk is still to run: whoever ends it comes back here
    now = timezone.now()
    if JobChunk.Status.FAILED in statuses:
        error = next(
            c.report.get("error", "") for c in chunks if c.status == JobChunk.Status.FAILED
        )
        Job.objects.filter(pk=job.pk, status__in=Job.ACTIVE).update(
            status=Job.Status.FAILED, error=error, finished_at=now
        )
    elif job.cancel_requested or JobChunk.Status.CANCELLED in statuses:
        if Job.objects.filter(pk=job.pk, status__in=Job.ACTIVE).update(
            status=Job.Status.CANCELLED, finished_at=now
        ):
            _delete_parts(chunks)
            audit_log(
                actor=None, action="job.cancelled", obj=job.dataset, details={"job": str(job.pk)}
            )
            _delete_temporary(job.pk)
    elif statuses == {JobChunk.Status.DONE}:
        excluded = no_rows_excluded()
        invalid: list[dict] = []
        for c in chunks:
            for reason, n in c.report["excluded"].items():
                excluded[reason] = excluded.get(reason, 0) + n
            invalid.extend(c.report["invalid_rows"])
        invalid.sort(key=lambda r: r["line"])
        with transaction.atomic():
            published = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
                status=Job.Status.SUCCEEDED,
                rows_in=sum(c.report["rows_in"] for c in chunks),
                rows_out=sum(c.report["rows_out"] for c in chunks),
                excluded=excluded,
                invalid_rows=invalid[:MAX_INVALID_REPORTED],
                finished_at=now,
            )
            if published:
                job.refresh_from_db()
                audit_log(
                    actor=None,
                    action="job.succeeded",
                    obj=job.dataset,
                    details={
                        "job": str(job.pk),
                        "rows_in": job.rows_in,
                        "rows_out": job.rows_out,
                        "excluded": excluded,
                    },
                )
        if published:
            _delete_temporary(job.pk)
    job.refresh_from_db()
    return job


def _part_names(job_id, index: int) -> tuple[str, str, str]:
    """Return where a chunk stores its output part, its vault part and its index.

    The names are fixed, so a job that ends can delete what a worker stored even when the
    worker died before recording it on the chunk.
    """
    return (
        f"jobs/{job_id}/part-{index:05d}.csv.enc",
        f"jobs/{job_id}/vault-{index:05d}.csv.enc",
        reidentification.index_name(job_id, index),
    )


def _delete_parts(chunks: Iterable[JobChunk]) -> None:
    """Delete what the chunks stored: output part, vault part and re-identification index."""
    for c in chunks:
        for name in {c.output_file, c.vault_file, *_part_names(c.job_id, c.index)} - {""}:
            default_storage.delete(name)


def _delete_temporary(job_id) -> None:
    """Delete the ciphertext dead workers left in the temporary folder for a job that ended.

    No chunk of the job runs any more; an attempt that lost its lease deletes its own.
    """
    for stale in Path(settings.FILE_UPLOAD_TEMP_DIR).glob(f"{job_id}-*"):
        stale.unlink(missing_ok=True)


def job_output(*, job: Job) -> Iterator[bytes]:
    """Yield the pseudonymised CSV of a finished job, part after part, decrypted on the fly."""
    if job.status != Job.Status.SUCCEEDED:
        raise NotAllowedNow(
            f"The output is ready only when the job has succeeded; it is {job.get_status_display().lower()}."
        )
    if job.dataset.data_flow.programme.status == Programme.Status.DESTROYED:
        raise NotAllowedNow(
            "The programme's data was destroyed: its outputs can no longer be read."
        )
    for chunk in job.chunks.order_by("index"):
        key = envelope.unwrap(settings.KEY_ENCRYPTION_KEY, bytes(chunk.output_key))
        with default_storage.open(chunk.output_file, "rb") as encrypted:
            yield from envelope.iter_plaintext(key, encrypted, chunk.associated_data)


def reidentify(
    *, actor: User, practice: Organisation, programme: Programme, codes: list[str]
) -> tuple[list[dict], list[str]]:
    """Return the NHS numbers behind codes, for patients registered at this practice only.

    Codes of other practices' patients are reported as not found, exactly like unknown codes.
    """
    if programme.status == Programme.Status.DESTROYED:
        raise NotAllowedNow(
            "The programme's data and keys were destroyed: its codes can no longer be re-identified."
        )
    wanted = {c.strip().lower() for c in codes if isinstance(c, str) and c.strip()}
    found: dict[str, str] = {}
    chunks = JobChunk.objects.filter(
        job__dataset__data_flow__programme=programme, job__status=Job.Status.SUCCEEDED
    ).exclude(vault_file="")
    for chunk in chunks.order_by("job__created_at", "index"):
        name = _index_of(chunk)
        with default_storage.open(name, "rb") as f:
            found.update(
                reidentification.look_up(
                    settings.KEY_ENCRYPTION_KEY,
                    f,
                    reidentification.index_associated_data(chunk.job_id, chunk.index),
                    wanted,
                    practice.ods_code,
                )
            )
    ordered = list(
        dict.fromkeys(c.strip().lower() for c in codes if isinstance(c, str) and c.strip())
    )
    results = [{"code": c, "nhs_number": found[c]} for c in ordered if c in found]
    not_found = [c for c in ordered if c not in found]
    audit_log(
        actor=actor,
        action="pseudonym.reidentified",
        obj=practice,
        details={
            "programme": programme.slug,
            "codes_asked": len(ordered),
            "codes_answered": len(results),
        },
    )
    return results, not_found


def _index_write(
    job_id, chunk_index: int, index: reidentification.IndexBuilder, sink: BinaryIO
) -> None:
    """Seal a part's re-identification index into a file (then settled and stored)."""
    index.write(
        settings.KEY_ENCRYPTION_KEY,
        sink,
        reidentification.index_associated_data(job_id, chunk_index),
    )


def _index_store(job_id, chunk_index: int, index: reidentification.IndexBuilder) -> str:
    """Seal a part's re-identification index into a temporary file, then into storage."""
    handle, name = tempfile.mkstemp(
        dir=settings.FILE_UPLOAD_TEMP_DIR, prefix=f"{job_id}-{chunk_index}-index-", suffix=".enc"
    )
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as sink:
            _index_write(job_id, chunk_index, index, sink)
            _settle(sink)
        return _replace_in_storage(reidentification.index_name(job_id, chunk_index), path)
    finally:
        path.unlink(missing_ok=True)


def _index_of(chunk: JobChunk) -> str:
    """Return the storage name of a part's re-identification index, building it if missing.

    Every part since the index exists has one, written by its chunk; a part of an older
    job gets its own the first time it is needed, from its vault (read whole, once).
    """
    name = reidentification.index_name(chunk.job_id, chunk.index)
    if default_storage.exists(name):
        return name
    index = reidentification.IndexBuilder()
    key = envelope.unwrap(settings.KEY_ENCRYPTION_KEY, bytes(chunk.vault_key))
    with default_storage.open(chunk.vault_file, "rb") as encrypted:
        plain = envelope.decrypting_reader(key, encrypted, chunk.vault_associated_data)
        index.add_csv(plain)
    return _index_store(chunk.job_id, chunk.index, index)


def mapping_from_request(raw: object) -> object:
    """Return the mapping from a multipart field (JSON text) or a JSON body (object)."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                f"The mapping is not valid JSON: {exc.msg} (character {exc.pos}).", field="mapping"
            ) from None
    return raw
