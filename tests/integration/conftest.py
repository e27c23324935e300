"""Real Celery worker processes for the integration tests, on the test database."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def test_database_url() -> str:
    """Return the URL of the database this test run uses (pytest-django's test_ copy)."""
    s = connection.settings_dict
    auth = quote(s["USER"] or "")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class Workers:
    """Start `celery worker` processes on a queue of their own; stop them at the end."""

    def __init__(self, log_dir: Path) -> None:
        self.queue = f"test-{uuid.uuid4().hex[:12]}"
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen] = {}

    def start(
        self,
        name: str = "w1",
        *,
        beat: bool = False,
        processes: int = 0,
        **extra_env: str,
    ) -> subprocess.Popen:
        """Start a worker; with beat, it also runs the periodic tasks (celery's -B).

        One process (solo pool) unless `processes` asks for a prefork pool of that many.
        extra_env overrides the environment, e.g. CELERY_BROKER_URL for another broker.
        The worker leads a process group of its own, so kill() can stop it whole.
        """
        env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "PHM_CELERY_QUEUE": self.queue,
            "PYTHONUNBUFFERED": "1",
            **extra_env,
        }
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            [
                sys.executable, "-X", "faulthandler", "-m", "celery", "-A", "phm_portal", "worker",
                *(["--pool=prefork", f"--concurrency={processes}"] if processes else ["--pool=solo"]),
                "--loglevel=INFO", "-Q", self.queue, "-n", f"{name}-{self.queue}@%h",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                *(["-B", "-s", str(self.log_dir / f"{name}-beat-schedule")] if beat else []),
            ],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.processes[name] = process
        # Ready means connected to the broker and consuming: a worker that cannot get there
        # fails here, with its log, not later as a task that never ran.
        self.wait_for(
            lambda: process.poll() is not None or " ready." in self.log(name),
            what=f"worker {name} to be ready",
        )
        if process.poll() is not None:
            raise AssertionError(f"worker {name} stopped as it started\n{self.report()}")
        return process

    def kill(self, name: str) -> None:
        """SIGKILL the whole worker: its main process and every pool process it started."""
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def log(self, name: str = "w1") -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def report(self) -> str:
        """Each worker's state (running, or its exit code) and the end of its log.

        A worker still running is stopped with SIGABRT first, so its log ends with where each
        of its threads was (faulthandler): a worker stuck before it logs anything says where.
        """
        states = {}
        for name, process in self.processes.items():
            if process.poll() is None:
                states[name] = "was running; stopped with SIGABRT to show where it was"
                process.send_signal(signal.SIGABRT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=10)
            else:
                states[name] = f"had stopped with exit code {process.returncode}"
        from phm_portal.celery import app

        parts = [
            f"this test process sends tasks to {app.connection_for_write().as_uri()}, "
            f"queue {app.conf.task_default_queue} (the workers': {self.queue})",
            *(f"--- {name} ({states[name]}):\n{self.log(name)[-8000:]}" for name in states),
        ]
        return "\n".join(parts)

    def wait_for(self, predicate, *, what: str, **timing: float):
        """wait_for(), failing with the workers' states and logs as they are at the end."""
        try:
            return wait_for(predicate, what=what, **timing)
        except AssertionError as timed_out:
            raise AssertionError(f"{timed_out}\n{self.report()}") from None

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
            # Pool processes of a worker that was killed (or left them) go with its group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def workers(transactional_db, tmp_path) -> Iterator[Workers]:
    """Workers on a private queue; tasks this test process sends go to it as well."""
    from phm_portal.celery import app

    pool = Workers(tmp_path)
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = pool.queue
    yield pool
    app.conf.task_default_queue = previous
    pool.stop()


def wait_for(predicate, *, timeout: float = 60, interval: float = 0.2, what: str = "condition"):
    """Poll until predicate() is truthy; fail saying what did not happen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def stop_group(group: int, signal_number: int) -> None:
    """Send a signal to a worker's process group; for SIGSTOP, return once all are stopped."""
    os.killpg(group, signal_number)
    if signal_number != signal.SIGSTOP:
        return
    wait_for(
        lambda: all(state in "TtZX" for state in group_states(group)),
        timeout=5,
        interval=0.001,
        what=f"process group {group} to stop",
    )


def group_states(group: int) -> list[str]:
    """Return the state letter of each process of a process group (from /proc)."""
    states = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process has gone
            continue
        if int(fields[2]) == group:  # state, ppid, pgrp
            states.append(fields[0])
    return states
