"""What the datasets app holds of a programme, and how it is destroyed (phm_portal.shredders).

Extracts, pseudonymised output parts, re-identification vault parts and their indexes
(files, each under its own wrapped data key), ciphertext a stopped worker left in the temporary
folder, and the programme's pseudonymisation key. Destroyed by cryptographic erase
(every key), then deletion of the files and of the rows naming them; extract and job
rows stay as tombstones (name, size, counts, status destroyed).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage

from datasets import reidentification
from datasets.models import Dataset, Job, JobChunk, ProgrammeKey
from governance.models import Programme
from phm_portal.errors import NotAllowedNow
from phm_portal.shredders import Renew, Shredder

FILE_KINDS = ("extracts", "outputs", "vault_parts", "reidentification_indexes")


def key_id(wrapped: bytes | memoryview | None) -> str:
    """Return the id of a wrapped data key: the first 16 hex digits of its SHA-256."""
    return "dk-" + hashlib.sha256(bytes(wrapped or b"")).hexdigest()[:16]


def _file_facts(name: str, renew: Renew) -> dict:
    if not name or not default_storage.exists(name):
        return {"file": name, "bytes": None, "sha256": None, "present": False}
    digest = hashlib.sha256()
    size = 0
    with default_storage.open(name, "rb") as f:
        for i, block in enumerate(iter(lambda: f.read(1 << 20), b"")):
            digest.update(block)
            size += len(block)
            if i % 256 == 255:
                renew()
    return {"file": name, "bytes": size, "sha256": digest.hexdigest(), "present": True}


def temporary_files(job_ids: list[str]) -> list[Path]:
    """Return ciphertext a stopped worker left in the temporary folder for these jobs."""
    tmp = Path(settings.FILE_UPLOAD_TEMP_DIR)
    found: list[Path] = []
    for job_id in job_ids:
        found.extend(sorted(tmp.glob(f"{job_id}-*")))
    return found


def _of(programme: Programme):
    return (
        Dataset.objects.filter(data_flow__programme=programme),
        JobChunk.objects.filter(job__dataset__data_flow__programme=programme),
    )


def manifest(programme: Programme, renew: Renew) -> dict:
    """Return every file, key and temporary file of the programme, with sizes and hashes."""
    extracts, outputs, vaults, indexes, data_keys = [], [], [], [], []
    datasets, chunks = _of(programme)
    for dataset in datasets.order_by("uploaded_at", "id"):
        entry = {
            "id": str(dataset.id),
            "name": dataset.original_name,
            "plaintext_bytes": dataset.bytes,
            "plaintext_sha256": dataset.sha256,
            **_file_facts(dataset.file, renew),
        }
        if dataset.wrapped_key:
            entry["data_key"] = key_id(dataset.wrapped_key)
            data_keys.append({"id": entry["data_key"], "protects": f"extract {dataset.id}"})
        extracts.append(entry)
    for chunk in chunks.order_by("job__created_at", "job_id", "index"):
        for kind, name, wrapped, into in (
            ("output", chunk.output_file, chunk.output_key, outputs),
            ("vault", chunk.vault_file, chunk.vault_key, vaults),
        ):
            if not name and not wrapped:
                continue
            entry = {"id": f"{chunk.job_id}:{chunk.index}", "job": str(chunk.job_id)}
            entry.update(_file_facts(name, renew))
            if wrapped:
                entry["data_key"] = key_id(wrapped)
                data_keys.append({"id": entry["data_key"], "protects": f"{kind} {entry['id']}"})
            into.append(entry)
        if chunk.vault_file:
            # Sealed with its own data key, wrapped by the KEK inside the file: deleted.
            name = reidentification.index_name(chunk.job_id, chunk.index)
            facts = _file_facts(name, renew)
            if facts["present"]:
                indexes.append({"id": f"{chunk.job_id}:{chunk.index}", **facts})
    job_ids = [
        str(pk)
        for pk in Job.objects.filter(dataset__data_flow__programme=programme).values_list(
            "pk", flat=True
        )
    ]
    temporary = [{"file": p.name, "bytes": p.stat().st_size} for p in temporary_files(job_ids)]
    key = ProgrammeKey.objects.filter(programme=programme).first()
    programme_keys = (
        [{"id": str(key.key_id), "created_at": key.created_at.isoformat()}] if key else []
    )

    def total(items: list[dict]) -> int:
        return sum(i.get("bytes") or 0 for i in items)

    totals = {
        "extracts": len(extracts),
        "extract_bytes": total(extracts),
        "outputs": len(outputs),
        "output_bytes": total(outputs),
        "vault_parts": len(vaults),
        "vault_bytes": total(vaults),
        "reidentification_indexes": len(indexes),
        "reidentification_index_bytes": total(indexes),
        "temporary_files": len(temporary),
        "data_keys": len(data_keys),
        "programme_keys": len(programme_keys),
    }
    return {
        "extracts": extracts,
        "outputs": outputs,
        "vault_parts": vaults,
        "reidentification_indexes": indexes,
        "temporary_files": temporary,
        "data_keys": data_keys,
        "programme_keys": programme_keys,
        "jobs": job_ids,
        "totals": totals,
        "lines": [
            {"label": "Extracts received (stored encrypted)", "count": len(extracts),
             "bytes": totals["extract_bytes"]},
            {"label": "Pseudonymised output parts", "count": len(outputs),
             "bytes": totals["output_bytes"]},
            {"label": "Re-identification vault parts", "count": len(vaults),
             "bytes": totals["vault_bytes"]},
            {"label": "Re-identification indexes (one per vault part)", "count": len(indexes),
             "bytes": totals["reidentification_index_bytes"]},
            {"label": "Temporary files left by stopped workers", "count": len(temporary)},
            {"label": "Data keys (one per file, wrapped)", "count": len(data_keys)},
            {"label": "Programme pseudonymisation keys", "count": len(programme_keys)},
        ],
    }  # fmt: skip


def erase_keys(programme: Programme, part: dict) -> dict:
    """Erase every wrapped data key and the programme key: nothing is readable after this."""
    datasets, chunks = _of(programme)
    erased_datasets = datasets.exclude(wrapped_key=b"").update(
        wrapped_key=b"", status=Dataset.Status.DESTROYED
    )
    datasets.update(status=Dataset.Status.DESTROYED)
    erased_chunks = chunks.exclude(output_key=None, vault_key=None).update(
        output_key=None, vault_key=None
    )
    deleted_keys, _ = ProgrammeKey.objects.filter(programme=programme).delete()
    return {
        "data_keys_erased": [k["id"] for k in part["data_keys"]],
        "programme_keys_erased": [k["id"] for k in part["programme_keys"]],
        "rows_changed_now": {
            "extract_keys": erased_datasets,
            "part_keys": erased_chunks,
            "programme_keys": deleted_keys,
        },
    }


def _names(part: dict) -> list[str]:
    # A manifest written before indexes existed has none.
    return [e["file"] for kind in FILE_KINDS for e in part.get(kind, []) if e.get("file")]


def delete_files(programme: Programme, part: dict, renew: Renew) -> dict:
    """Delete every file of the manifest, and what stopped workers left behind."""
    names = _names(part)
    deleted, already_gone = 0, 0
    for i, name in enumerate(names):
        if default_storage.exists(name):
            default_storage.delete(name)
            deleted += 1
        else:
            already_gone += 1
        if i % 50 == 49:
            renew()
    temporary = 0
    for path in temporary_files(part["jobs"]):
        path.unlink(missing_ok=True)
        temporary += 1
    return {
        "files": len(names),
        "bytes": sum(e.get("bytes") or 0 for kind in FILE_KINDS for e in part.get(kind, [])),
        "deleted_by_this_attempt": deleted,
        "already_gone": already_gone,
        "temporary_files_deleted": temporary,
    }


def delete_rows(programme: Programme, part: dict) -> dict:
    """Delete the rows that name files and keys; extracts and jobs stay as tombstones."""
    datasets, chunks = _of(programme)
    deleted, _ = chunks.delete()
    datasets.update(file="")
    return {
        "part_rows_deleted": deleted,
        "kept": "Extract and job rows stay as tombstones (name, size, counts, status destroyed); "
        "they hold no data and no key.",
    }


def verify(programme: Programme, part: dict) -> list[dict]:
    """Check that nothing of the manifest remains: no file, no key, no readable path."""
    from datasets import services  # noqa: PLC0415 - services import this app's models late

    datasets, chunks = _of(programme)
    checks: list[dict] = []

    def check(what: str, ok: bool) -> None:
        checks.append({"check": what, "passed": ok})

    names = _names(part)
    remaining = [name for name in names if default_storage.exists(name)]
    check(f"none of the {len(names)} files of the manifest is in storage", not remaining)
    check("no temporary file of the programme's jobs remains", not temporary_files(part["jobs"]))
    key_ids = [k["id"] for k in part["programme_keys"]]
    check(
        "the programme's pseudonymisation key is gone",
        not ProgrammeKey.objects.filter(programme=programme).exists()
        and not ProgrammeKey.objects.filter(key_id__in=key_ids).exists(),
    )
    check(
        "no extract of the programme holds a data key",
        not datasets.exclude(wrapped_key=b"").exists(),
    )
    check("no output or vault part of the programme remains", not chunks.exists())
    programme.refresh_from_db()
    try:
        services.programme_key(programme=programme)
        refused = False
    except NotAllowedNow:
        refused = True
    check("asking for the programme's key is refused", refused)
    jobs = Job.objects.filter(pk__in=part["jobs"], status=Job.Status.SUCCEEDED)
    readable = 0
    for job in jobs:
        try:
            next(services.job_output(job=job), None)
            readable += 1
        except NotAllowedNow:
            pass
    finished = jobs.count()
    check(
        "reading the output of the finished job is refused"
        if finished == 1
        else f"reading the output of each of the {finished:,} finished jobs is refused",
        not readable,
    )
    return checks


def preview(programme: Programme) -> dict:
    """Return what destroying the programme would take now (counts, no hashing)."""
    datasets, chunks = _of(programme)
    held = datasets.exclude(status=Dataset.Status.DESTROYED)
    return {
        "extracts": held.count(),
        "extract_bytes": sum(held.values_list("bytes", flat=True)),
        "outputs": chunks.exclude(output_file="").count(),
        "vault_parts": chunks.exclude(vault_file="").count(),
        "jobs_active": Job.objects.filter(
            dataset__data_flow__programme=programme, status__in=Job.ACTIVE
        ).count(),
        "programme_key": ProgrammeKey.objects.filter(programme=programme).exists(),
    }


SHREDDER = Shredder(
    app="datasets",
    holds="Extracts, pseudonymised outputs, re-identification vaults, temporary files and "
    "their keys: erased by cryptographic erase, then deleted.",
    manifest=manifest,
    erase_keys=erase_keys,
    delete_files=delete_files,
    delete_rows=delete_rows,
    verify=verify,
    preview=preview,
)
