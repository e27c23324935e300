"""Benchmark: pseudonymisation end to end, against a plain csv.DictReader + hmac baseline.

Run with `make bench` (or `PHM_DEMO=1 .venv/bin/python bench/pseudonymise.py [rows ...]`).
For each size it writes a synthetic extract (fixed seed), uploads it encrypted, and times
the job from queued to succeeded (the time the worker marks it so) on real Celery worker processes (the embedded filesystem
broker and SQLite, in a temporary var folder), then reads the workers' peak memory. The
baseline reads the same plaintext with csv.DictReader and computes one HMAC per row.

A shared virtual machine's speed varies from minute to minute (the baseline alone by 20%
here), so each size runs RUNS times, the job and the baseline in turn, and the verdict
uses the medians; the range is printed too.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = [int(a) for a in sys.argv[1:]] or [1_000_000, 5_000_000]
WORKERS = 2
TARGET_ROWS_PER_SECOND = 500_000
TARGET_RATIO = 7.0
MEMORY_LIMIT_MIB = 500
RUNS = int(os.environ.get("PHM_BENCH_RUNS", "3"))


def baseline(path: Path, limit: int) -> float:
    """Rows per second of csv.DictReader + hmac per row (+ writing the coded rows)."""
    key = os.urandom(32)
    start = time.perf_counter()
    rows = 0
    with open(path, newline="") as f, open(os.devnull, "w", newline="") as sink:
        writer = csv.writer(sink)
        for row in csv.DictReader(f):
            code = hmac.new(key, row["nhs_number"].encode(), hashlib.sha256).hexdigest()
            writer.writerow(
                [
                    code,
                    row["date_of_birth"][:4],
                    row["postcode"].split(" ")[0],
                    row["practice"],
                    row["event_date"],
                    row["event_code"],
                    row["measure_1"],
                    row["measure_2"],
                ]
            )
            rows += 1
            if rows >= limit:
                break
    return rows / (time.perf_counter() - start)


def peak_rss_mib(pid: int) -> float:
    """Return the peak resident memory (VmHWM) of a process and its children, in MiB."""
    peak = 0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except FileNotFoundError:
            pass
    return peak / 1024


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system) used so far by a process and its children."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except FileNotFoundError:
            pass
    return total / ticks


def opt_out_some(path: Path, admin, practice, share: float = 0.01) -> int:
    """Record a Type 1 dissent for a share of the extract's patients, so the register works."""
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    from consent import services as consent

    numbers = pc.unique(
        pcsv.read_csv(
            path, convert_options=pcsv.ConvertOptions(include_columns=["nhs_number"])
        ).column("nhs_number")
    ).to_pylist()
    chosen = numbers[:: int(1 / share)]
    lines = ["nhs_number,event,recorded_on"] + [f"{n},dissent,2025-01-01" for n in chosen]
    report = consent.type1_import(
        actor=admin, practice=practice, data="\n".join(lines).encode(), partial=True
    )
    return report.accepted


def main() -> None:
    var = Path(tempfile.mkdtemp(prefix="phm-bench-"))
    env = {
        **os.environ,
        "PHM_DEMO": "1",
        "PHM_VAR_DIR": str(var),
        "DATABASE_URL": f"sqlite:///{var / 'bench.sqlite3'}",
    }
    env.pop("CELERY_BROKER_URL", None)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "phm_portal.settings")
    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from synthetic_extract import write

    from datasets import services
    from datasets.models import Job
    from datasets.uploads import EncryptedUpload, EncryptingUploadHandler
    from governance.models import DataFlow, Organisation, Participation, Programme, User

    admin = User.objects.create(username="bench-admin", role="csu_admin")
    programme = Programme.objects.create(
        slug="bench",
        name="Bench",
        region="Bench",
        status="live",
        national_opt_out_applies=False,
        national_opt_out_exemption="Benchmark",
    )
    practice = Organisation.objects.create(
        ods_code="P90001", name="Bench practice", kind="gp_practice"
    )
    csu = Organisation.objects.create(ods_code="0AR", name="Bench CSU", kind="csu")
    Participation.objects.create(
        programme=programme, organisation=practice, role="controller", is_lead=True
    )
    Participation.objects.create(programme=programme, organisation=csu, role="processor")
    flow = DataFlow.objects.create(
        programme=programme,
        source=practice,
        destination=csu,
        data_categories=["gp"],
        identifiability="identifiable",
        status="approved",
        submitted_at=timezone.now(),
        decided_at=timezone.now(),
    )
    mapping = {
        "nhs_number": "nhs_number",
        "practice": "practice",
        "drop": ["forename", "surname"],
        "generalise": [
            {"column": "date_of_birth", "rule": "age_band_5"},
            {"column": "postcode", "rule": "district"},
        ],
    }

    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "phm_portal",
            "worker",
            "--loglevel=WARNING",
            f"--concurrency={WORKERS}",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(var / "worker.log", "wb"),  # noqa: SIM115
    )
    results = []
    try:
        time.sleep(3)

        def upload(path: Path):
            size = path.stat().st_size
            handler = EncryptingUploadHandler()
            handler.new_file("file", path.name, "text/csv", size)
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    handler.receive_data_chunk(chunk, 0)
            encrypted: EncryptedUpload = handler.file_complete(size)
            return services.dataset_upload(
                actor=admin, data_flow=flow, upload=encrypted, mapping=mapping
            )

        def run_job(dataset) -> tuple[Job, float, float]:
            cpu_before = cpu_seconds(worker.pid)
            queued = timezone.now()
            job = services.dataset_pseudonymise(actor=admin, dataset=dataset)
            # The end is the time the worker marked the job succeeded (its finished_at):
            # polling often would take CPU from the workers, polling seldom would add its
            # interval to the time measured.
            while Job.objects.get(pk=job.pk).status in ("queued", "running"):
                time.sleep(0.1)
            job.refresh_from_db()
            assert job.status == "succeeded", job.error
            elapsed = (job.finished_at - queued).total_seconds()
            return job, elapsed, cpu_seconds(worker.pid) - cpu_before

        # Warm the workers up (imports, first connections) as a long-running worker is:
        # a small job cut in two chunks, one for each worker process.
        from django.conf import settings

        chunk_bytes = settings.PHM_JOB_CHUNK_BYTES
        settings.PHM_JOB_CHUNK_BYTES = 1 << 20
        run_job(upload(write(var / "warm-up.csv", 20_000)))
        settings.PHM_JOB_CHUNK_BYTES = chunk_bytes

        for rows in SIZES:
            path = write(var / f"extract-{rows}.csv", rows)
            size = path.stat().st_size
            opted_out = opt_out_some(path, admin, practice)
            dataset = upload(path)
            runs = []
            for _ in range(RUNS):
                base = baseline(path, min(rows, 1_000_000))
                job, elapsed, cpu = run_job(dataset)
                runs.append((elapsed, rows / elapsed, base, rows / elapsed / base, cpu))
            path.unlink()
            elapsed, rate, base, _, cpu = (statistics.median(r[i] for r in runs) for i in range(5))
            ratios = [r[3] for r in runs]
            results.append((rows, size, elapsed, rate, base))
            print(
                f"{rows:>10,} rows ({size / 2**20:,.0f} MiB), median of {RUNS} runs: {elapsed:6.2f} s end to end, "
                f"{rate:>10,.0f} rows/s; baseline {base:,.0f} rows/s; ratio {rate / base:.1f}x "
                f"(target {TARGET_ROWS_PER_SECOND:,} rows/s and {TARGET_RATIO:.0f}x)",
                flush=True,
            )
            print(
                f"{'':>10}  range: {min(r[0] for r in runs):.2f}-{max(r[0] for r in runs):.2f} s, "
                f"{min(r[1] for r in runs):,.0f}-{max(r[1] for r in runs):,.0f} rows/s, baseline "
                f"{min(r[2] for r in runs):,.0f}-{max(r[2] for r in runs):,.0f} rows/s, ratio "
                f"{min(ratios):.1f}-{max(ratios):.1f}x",
                flush=True,
            )
            print(
                f"{'':>10}  workers' CPU {cpu:.2f} s ({cpu / rows * 1e6:.2f} s per million rows); "
                f"{job.chunks.count()} chunks; left out by Type 1 opt-out: {job.excluded['type1']:,} rows "
                f"({opted_out:,} patients opted out)",
                flush=True,
            )
        peak = peak_rss_mib(worker.pid)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    print(f"peak memory of one worker process: {peak:,.0f} MiB (limit {MEMORY_LIMIT_MIB} MiB)")
    if len(results) > 1:
        (r1, _, t1, _, _), (r2, _, t2, _, _) = results[0], results[-1]
        print(
            f"time per row grows {((t2 / r2) / (t1 / r1)):.2f}x from {r1:,} to {r2:,} rows (1.00 = linear)"
        )
    from datasets.pipeline import NATIVE_HMAC

    print(
        f"machine: {os.cpu_count()} cores; {WORKERS} worker processes; chunks of {int(os.environ.get('PHM_JOB_CHUNK_BYTES', 64 * 2**20)) // 2**20} MiB; "
        f"HMAC {'in C over OpenSSL (datasets/native)' if NATIVE_HMAC else 'in Python (datasets/native not built)'}"
    )
    shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    main()
