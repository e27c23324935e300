"""Benchmark: pseudonymisation end to end, as programmes run it, against two baselines.

Run with `make bench` (or `PHM_DEMO=1 .venv/bin/python bench/pseudonymise.py [rows ...]`;
polars from bench/requirements.txt).

The configuration measured is the real one: the programme applies the national data
opt-out and the Type 1 opt-out. For each size it writes a synthetic extract (fixed seed;
20 practices, all taking part), uploads it encrypted (the workers note its patients in
the practices' cohorts, as after any upload), records a Type 1 dissent for 1% of its
patients (consent.services.type1_import), starts a national check of the cohort and
imports the national service's reply in which 3% of them opted out
(national_check_start, national_check_complete: the check is compiled as it is
imported). Then, RUNS times, in turn:

- naive: csv.DictReader + one hmac per row (+ writing the coded rows), on at most a
  million rows of the same file;
- polars: bench/polars_pipeline.py on the same file (lazy scan, anti-join of the
  opted-out numbers, HMAC of each distinct number, join, sink_csv), in its own process;
- the job with the national opt-out applied, timed from queued to the time its worker
  marked it succeeded, on two warmed-up Celery worker processes (embedded broker,
  SQLite, a temporary var folder);
- the same job with the national opt-out switched off (the programme exempt), to show
  what the national opt-out costs; the two jobs take turns at going first.

Its cost is the median, over such pairs (the RUNS runs' and more: 31 pairs up to 1M rows,
15 above, or PHM_BENCH_PAIRS), of each pair's time with it over time without (the ratio of
the runs' medians is printed too).

Each worker process's peak memory is read for the jobs alone (its high-water mark is
reset before each). 5 codes are re-identified (the median of 11 calls of
datasets.services.reidentify) when the programme's vaults first hold 5M rows (the target's
programme), and again at the end, when they hold every job's. A shared machine's speed
varies from minute to minute, so the verdict is on the medians; the ranges are printed too.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import hmac
import json
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
PRACTICES = [f"P{900 + i:03d}01" for i in range(20)]  # as bench/synthetic_extract.py
TYPE1_SHARE = 0.01
NATIONAL_SHARE = 0.03
TARGET_NAIVE_RATIO = 8.0
TARGET_POLARS_RATIO = 1.5
TARGET_NATIONAL_COST = 0.10
TARGET_GROWTH = 1.1
MEMORY_LIMIT_MIB = 400
REIDENTIFY_TARGET_MS = 200
RUNS = int(os.environ.get("PHM_BENCH_RUNS", "3"))
# Pairs of jobs with and without the national opt-out, for its cost: at least RUNS (the
# runs' jobs are pairs too); more are cheap, and a job of a second is noisy alone (on a
# virtual machine whose host gives back memory as it is touched, the same 1M job took
# 0.51 to 0.90 s within a minute: the median of 7 pairs still moved by +-8%, of 15 by
# +-7%). A pair of 1M jobs takes about 3 s, so sizes up to 1M take 31 pairs, larger 15;
# PHM_BENCH_PAIRS sets one number for every size.
PAIRS = int(os.environ.get("PHM_BENCH_PAIRS", "0"))


def pairs_at(rows: int) -> int:
    return max(RUNS, PAIRS or (31 if rows <= 1_000_000 else 15))


# The re-identification target is for a programme whose vault holds 5M rows: it is timed
# when the programme's vaults first hold that many, and again at the end (every job).
REIDENTIFY_VAULT_ROWS = 5_000_000


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


def polars_run(path: Path, opted_out: Path, var: Path) -> dict:
    """Run the polars pipeline in a process of its own; return its seconds, rows, peak."""
    out = var / "polars-out.csv"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "polars_pipeline.py"),
            str(path),
            str(opted_out),
            str(out),
            os.urandom(32).hex(),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    out.unlink(missing_ok=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def worker_peaks_mib(pid: int) -> dict[int, float]:
    """Return the peak resident memory (VmHWM) of each worker process, in MiB."""
    peaks = {}
    for child in _children(pid):
        try:
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks[child] = int(line.split()[1]) / 1024
        except FileNotFoundError:
            pass
    return peaks


def reset_peaks(pid: int) -> float:
    """Reset the worker processes' peak memory to their current memory (Linux clear_refs 5).

    Return the largest memory a worker process holds at that moment, in MiB.
    """
    for child in _children(pid):
        with contextlib.suppress(OSError):
            Path(f"/proc/{child}/clear_refs").write_text("5")
    return max(worker_peaks_mib(pid).values(), default=0.0)


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


def extract_patients(path: Path) -> tuple[list[str], list[str]]:
    """Return the extract's distinct NHS numbers, in a fixed order, and each one's practice."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    table = pcsv.read_csv(
        path,
        convert_options=pcsv.ConvertOptions(
            include_columns=["nhs_number", "practice"],
            column_types={"nhs_number": pa.string(), "practice": pa.string()},
        ),
    )
    numbers = table.column("nhs_number")
    unique = pc.unique(numbers)
    first = pc.index_in(unique, value_set=numbers)  # each number's first row
    return unique.to_pylist(), pc.take(table.column("practice"), first).to_pylist()


def median(values) -> float:
    return statistics.median(values)


def span(values, fmt: str = ",.0f") -> str:
    return f"{min(values):{fmt}}-{max(values):{fmt}}"


def main() -> None:  # noqa: PLR0915 - one script, read top to bottom
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

    from consent import services as consent
    from consent.models import NationalOptOutCheck
    from datasets import services
    from datasets.models import Job
    from datasets.pipeline.hashing import NATIVE_HMAC
    from datasets.uploads import EncryptedUpload, EncryptingUploadHandler
    from governance.models import DataFlow, Organisation, Participation, Programme, User
    from phm_portal.models import AuditEvent

    admin = User.objects.create(username="bench-admin", role="csu_admin")
    programme = Programme.objects.create(
        slug="bench", name="Bench", region="Bench", status="live", national_opt_out_applies=True
    )
    practices = []
    for i, code in enumerate(PRACTICES):
        practice = Organisation.objects.create(
            ods_code=code, name=f"Bench practice {i}", kind="gp_practice"
        )
        Participation.objects.create(
            programme=programme, organisation=practice, role="data_provider", is_lead=False
        )
        practices.append(practice)
    Participation.objects.filter(programme=programme, organisation=practices[0]).update(
        role="controller", is_lead=True
    )
    csu = Organisation.objects.create(ods_code="0AR", name="Bench CSU", kind="csu")
    Participation.objects.create(programme=programme, organisation=csu, role="processor")
    flow = DataFlow.objects.create(
        programme=programme,
        source=practices[0],
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

    def national(applies: bool) -> None:
        programme.national_opt_out_applies = applies
        programme.national_opt_out_exemption = (
            "" if applies else "Benchmark: the same job without it"
        )
        programme.save(update_fields=["national_opt_out_applies", "national_opt_out_exemption"])

    def start_workers() -> subprocess.Popen:
        started = subprocess.Popen(
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
            stderr=open(var / "worker.log", "ab"),  # noqa: SIM115
        )
        time.sleep(3)
        return started

    worker = start_workers()
    results = []
    reidentified = None  # the re-identification line, once the vaults hold 5M rows
    left_out_so_far: set[str] = set()  # every patient seeded as opted out, at any size

    memory_before: list[float] = []  # a worker process's memory as each job starts
    try:

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

        def wait_until_noted(after: int, patients: int) -> None:
            """Wait for the workers to note the extract's patients (the upload's task).

            Each batch it notes is audited with its count; after: the last audit event
            before the upload.
            """
            deadline = time.monotonic() + 1800
            while True:
                events = AuditEvent.objects.filter(pk__gt=after, action="consent.patients_noted")
                if sum(e.details["numbers"] for e in events) >= patients:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError("the extract's patients were not noted in time")
                time.sleep(0.5)

        def seed_opt_outs(numbers: list[str], rows: int) -> tuple[int, int, Path]:
            """Record Type 1 dissents and a national check as a programme's users would."""
            type1 = numbers[:: int(1 / TYPE1_SHARE)]
            left_out_so_far.update(type1)  # a dissent stays: it counts at the next size too
            lines = ["nhs_number,event,recorded_on"] + [f"{n},dissent,2025-01-01" for n in type1]
            report = consent.type1_import(
                actor=admin,
                practice=practices[0],
                data="\n".join(lines).encode(),
                partial=True,
            )
            check = consent.national_check_start(actor=admin, programme=programme)
            opted_out = set(numbers[1 :: int(1 / NATIONAL_SHARE)])
            left_out_so_far.update(opted_out)
            returned = "\n".join(n for n in numbers if n not in opted_out) + "\n"
            started = time.perf_counter()
            check = consent.national_check_complete(
                actor=admin, check=check, returned=returned.encode()
            )
            imported = time.perf_counter() - started
            assert check.status == NationalOptOutCheck.Status.COMPLETE
            print(
                f"{'':>10}  seeded: {report.accepted:,} Type 1 dissents; national check of "
                f"{check.submitted:,} patients, {check.opted_out:,} opted out (reply imported "
                f"and compiled in {imported:.1f} s)",
                flush=True,
            )
            left_out = var / f"opted-out-{rows}.txt"
            left_out.write_text("\n".join(sorted(set(type1) | opted_out)) + "\n")
            return report.accepted, check.opted_out, left_out

        def run_job(dataset) -> tuple[Job, float, float, float]:
            before = reset_peaks(worker.pid)
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
            peak = max(worker_peaks_mib(worker.pid).values(), default=0.0)
            memory_before.append(before)
            return job, elapsed, cpu_seconds(worker.pid) - cpu_before, peak

        # Warm the workers up (imports, first connections) as a long-running worker is:
        # a small job cut in two chunks, one for each worker process, with the national
        # opt-out switched off (no check yet).
        from django.conf import settings

        chunk_bytes = settings.PHM_JOB_CHUNK_BYTES

        def warm_up() -> None:
            settings.PHM_JOB_CHUNK_BYTES = 1 << 20
            national(False)
            run_job(upload(write(var / "warm-up.csv", 20_000)))
            national(True)
            settings.PHM_JOB_CHUNK_BYTES = chunk_bytes

        warm_up()

        print(
            "Configuration measured: national data opt-out APPLIED (an unexpired check "
            f"covering every patient, {NATIONAL_SHARE:.0%} opted out) and Type 1 opt-outs "
            f"({TYPE1_SHARE:.0%} of patients); then the same job with the national opt-out "
            f"switched off. {WORKERS} worker processes, medians of {RUNS} runs.",
            flush=True,
        )
        for rows in SIZES:
            path = write(var / f"extract-{rows}.csv", rows)
            size = path.stat().st_size
            numbers, practice_of = extract_patients(path)
            last_event = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
            dataset = upload(path)
            wait_until_noted(last_event or 0, len(numbers))
            _, _, left_out = seed_opt_outs(numbers, rows)
            # Fresh, warmed-up worker processes for the jobs: the memory measured is the
            # jobs', not what noting the extract's patients left in a process.
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=60)
            worker = start_workers()
            warm_up()
            runs, pairs = [], []
            for i in range(pairs_at(rows)):
                if i < RUNS:
                    naive = baseline(path, min(rows, 1_000_000))
                    polar = polars_run(path, left_out, var)
                # A pair: the job with the national opt-out and without it, one after the
                # other, taking turns at going first (what ran before a job, polars' 1 to
                # 3 GiB just freed or the other job, would otherwise fall on one side).
                timed = {}
                for applies in (True, False) if i % 2 == 0 else (False, True):
                    national(applies)
                    timed[applies] = run_job(dataset)
                national(True)
                if reidentified is None and vault_rows(programme)[0] >= REIDENTIFY_VAULT_ROWS:
                    reidentified = reidentify_bench(
                        admin, programme, practices[0], numbers, practice_of, left_out_so_far
                    )
                (job, elapsed, cpu, peak), (_, elapsed_off, cpu_off, peak_off) = (
                    timed[True],
                    timed[False],
                )
                pairs.append(
                    {
                        "cost": elapsed / elapsed_off - 1,
                        "cpu_cost": cpu / cpu_off - 1,
                        "peak": max(peak, peak_off),
                    }
                )
                if i >= RUNS:
                    continue
                runs.append(
                    {
                        "naive": naive,
                        "polars": rows / polar["seconds"],
                        "polars_peak": polar["peak_mib"],
                        "polars_rows_out": polar["rows_out"],
                        "rate": rows / elapsed,
                        "elapsed": elapsed,
                        "rate_off": rows / elapsed_off,
                        "elapsed_off": elapsed_off,
                        "cpu": cpu,
                        "peak": max(peak, peak_off),
                        "excluded": job.excluded,
                        "rows_out": job.rows_out,
                        "chunks": job.chunks.count(),
                    }
                )
            path.unlink()

            def m(key: str, runs: list[dict] = runs) -> float:
                return median(r[key] for r in runs)

            def all_of(key: str, runs: list[dict] = runs) -> list[float]:
                return [r[key] for r in runs]

            rate, naive, polar = m("rate"), m("naive"), m("polars")
            cost = median(p["cost"] for p in pairs)
            results.append({"rows": rows, "per_row": m("elapsed") / rows})
            last = runs[-1]
            print(
                f"{rows:>10,} rows ({size / 2**20:,.0f} MiB), national opt-out applied: "
                f"{m('elapsed'):.2f} s end to end, {rate:,.0f} rows/s "
                f"(runs {span(all_of('rate'))})",
                flush=True,
            )
            print(
                f"{'':>10}  naive {naive:,.0f} rows/s (runs {span(all_of('naive'))}): "
                f"ratio {rate / naive:.1f}x (target {TARGET_NAIVE_RATIO:.0f}x; runs "
                f"{span([r['rate'] / r['naive'] for r in runs], '.1f')}x)",
                flush=True,
            )
            print(
                f"{'':>10}  polars {polar:,.0f} rows/s (runs {span(all_of('polars'))}; peak "
                f"{m('polars_peak'):,.0f} MiB; {last['polars_rows_out']:,} rows out): ratio "
                f"{rate / polar:.2f}x (target {TARGET_POLARS_RATIO}x; runs "
                f"{span([r['rate'] / r['polars'] for r in runs], '.2f')}x)",
                flush=True,
            )
            print(
                f"{'':>10}  national opt-out off: {m('elapsed_off'):.2f} s, "
                f"{m('rate_off'):,.0f} rows/s (runs {span(all_of('rate_off'))}); the national "
                f"opt-out costs {cost:+.1%} (target under {TARGET_NATIONAL_COST:.0%}; median "
                f"of {len(pairs)} pairs' time with it over time without, pairs "
                f"{span([p['cost'] * 100 for p in pairs], '+.1f')}%; ratio of the medians of "
                f"{RUNS} runs {m('elapsed') / m('elapsed_off') - 1:+.1%}; workers' CPU "
                f"{median(p['cpu_cost'] for p in pairs):+.1%})",
                flush=True,
            )
            print(
                f"{'':>10}  peak memory of one worker process: "
                f"{max(p['peak'] for p in pairs):,.0f} MiB (limit {MEMORY_LIMIT_MIB} MiB; "
                f"{max(memory_before[-2 * len(pairs) :]):,.0f} MiB held as a job started); "
                f"workers' CPU {m('cpu'):.2f} s "
                f"({m('cpu') / rows * 1e6:.2f} s per million rows); {last['chunks']} chunks; "
                f"{last['rows_out']:,} rows out; left out: {last['excluded']}",
                flush=True,
            )
        if len(results) > 1:
            first, final = results[0], results[-1]
            print(
                f"time per row grows {final['per_row'] / first['per_row']:.2f}x from "
                f"{first['rows']:,} to {final['rows']:,} rows (target under {TARGET_GROWTH}x)",
                flush=True,
            )
        if reidentified:
            first_held = f"when the programme's vaults first held {REIDENTIFY_VAULT_ROWS:,} rows"
            print(f"{first_held}: {reidentified}")
        print(
            "at the end: "
            + reidentify_bench(
                admin, programme, practices[0], numbers, practice_of, left_out_so_far
            ),
            flush=True,
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        if sys.exc_info()[0] is not None:
            shutil.rmtree(var, ignore_errors=True)  # a failed run leaves no extract behind
    print(
        f"machine: {os.cpu_count()} cores; {WORKERS} worker processes; chunks of "
        f"{int(os.environ.get('PHM_JOB_CHUNK_BYTES', 64 * 2**20)) // 2**20} MiB; HMAC "
        f"{'in C (OpenSSL 3 EVP_MAC, datasets/native)' if NATIVE_HMAC else 'in Python (datasets/native not built)'}"
    )
    shutil.rmtree(var, ignore_errors=True)


def vault_rows(programme) -> tuple[int, int, int]:
    """Return the rows, parts and jobs of a programme's published vaults."""
    from datasets.models import JobChunk

    chunks = JobChunk.objects.filter(
        job__dataset__data_flow__programme=programme, job__status="succeeded"
    ).only("report", "job_id")
    reports = [(c.report.get("vault_rows", 0), c.job_id) for c in chunks]
    return sum(r for r, _ in reports), len(reports), len({j for _, j in reports})


def reidentify_bench(
    admin, programme, practice, numbers: list[str], practice_of: list[str], left_out: set[str]
) -> str:
    """Time a practice manager's re-identification of 5 codes of their own patients.

    The codes are of patients of the last extract that no opt-out seeded so far leaves out
    (a Type 1 dissent recorded at an earlier size still applies).
    """
    from datasets import services
    from datasets.pipeline.hashing import CODE_LENGTH

    key = services.programme_key(programme=programme)
    mine = [
        n
        for i, n in enumerate(numbers)
        if practice_of[i] == practice.ods_code and n not in left_out
    ]
    wanted = mine[7::1000][:5]
    codes = [hmac.new(key, n.encode(), hashlib.sha256).hexdigest()[:CODE_LENGTH] for n in wanted]
    rows, parts, jobs = vault_rows(programme)
    timings = []
    for _ in range(11):
        started = time.perf_counter()
        results, not_found = services.reidentify(
            actor=admin, practice=practice, programme=programme, codes=codes
        )
        timings.append((time.perf_counter() - started) * 1000)
        assert [r["nhs_number"] for r in results] == wanted and not not_found, (results, wanted)
    return (
        f"re-identification of 5 codes in the programme ({jobs} jobs, {rows:,} vault "
        f"rows in {parts} parts): median {median(timings):.1f} ms (calls "
        f"{span(timings, '.1f')} ms; target under {REIDENTIFY_TARGET_MS} ms)"
    )


if __name__ == "__main__":
    main()
