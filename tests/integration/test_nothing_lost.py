"""Nothing lost: a job queued while the broker (Redis) is down waits, and runs once it is
back; with PostgreSQL unreachable, pages answer 503 with a plain message."""

import socket
import subprocess
import time

import pytest
from django.db import connections
from django.test import Client
from kombu import pools as kombu_pools

from datasets.models import Job
from phm_portal.celery import app
from tests.integration.conftest import wait_for
from tests.integration.test_pseudonymisation_workers import (  # noqa: F401 - fixture
    shared_storage,
    upload_synthetic,
)

pytestmark = pytest.mark.integration


def free_port() -> int:
    """A local port where nothing listens (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def private_redis(tmp_path):
    """A Redis of this test's own, not yet started: start() brings it up, the end stops it."""
    port = free_port()
    pidfile = tmp_path / "redis.pid"

    class PrivateRedis:
        url = f"redis://127.0.0.1:{port}/0"

        def start(self) -> None:
            subprocess.run(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--daemonize", "yes", "--pidfile", str(pidfile),
                 "--dir", str(tmp_path)],
                check=True,
            )  # fmt: skip
            wait_for(self.answers, timeout=10, what=f"redis on port {port}")

        def answers(self) -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    return conn.recv(16).startswith(b"+PONG")
            except OSError:
                return False

    redis = PrivateRedis()
    yield redis
    if pidfile.exists():
        pid = int(pidfile.read_text().strip())
        subprocess.run(["kill", str(pid)], check=False)


@pytest.fixture
def broker_at(private_redis, monkeypatch):
    """Point this process's Celery app at the private Redis (down until started)."""
    # Celery reads CELERY_BROKER_URL from the environment before its configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", private_redis.url)
    drop_broker_connections()
    assert app.connection_for_write().port == int(private_redis.url.split(":")[-1].split("/")[0])
    yield private_redis
    monkeypatch.undo()
    drop_broker_connections()


def drop_broker_connections() -> None:
    """Forget every pooled broker connection, so the next send connects to the broker anew.

    kombu keeps its pools in process-wide groups keyed by connection: clear those too, or
    a later test would be handed a pool closed here.
    """
    kombu_pools.reset()
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


@pytest.fixture
def small_dataset(api, alice, programme, practice_a, csu, shared_storage, tmp_path):  # noqa: F811
    return upload_synthetic(api(alice), programme, practice_a, csu, tmp_path / "extract.csv", 2_000)


def test_a_job_queued_while_redis_is_down_waits_then_runs_when_it_is_back(
    workers, broker_at, admin, small_dataset
):
    assert not broker_at.answers()
    client = Client()
    client.force_login(admin)
    started = time.monotonic()
    response = client.post(f"/datasets/{small_dataset.pk}/pseudonymise/")
    assert response.status_code == 302  # the request does not fail
    assert time.monotonic() - started < 30
    job = Job.objects.get()
    assert response["Location"] == f"/jobs/{job.pk}/"
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "Waiting for the task queue" in page and "The job failed" not in page
    body = client.get(f"/api/v1/jobs/{job.pk}/").json()
    assert body["status"] == "queued" and body["waiting_for_queue"] is True

    # Redis comes back; a worker (with the periodic look-out) starts on it.
    broker_at.start()
    workers.start("w1", beat=True, CELERY_BROKER_URL=broker_at.url, PHM_JOB_RESEND_SECONDS="1")
    workers.wait_for(
        lambda: Job.objects.get(pk=job.pk).status not in Job.ACTIVE,
        timeout=90,
        what="the job to finish",
    )
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.rows_in == 2_000 and job.rows_out > 0
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "Rows out" in page and "Waiting for the task queue" not in page
    output = client.get(f"/jobs/{job.pk}/output.csv")
    assert output.status_code == 200
    assert b"".join(output.streaming_content).count(b"\n") == job.rows_out + 1


def test_with_postgresql_unreachable_pages_answer_503_with_a_plain_message(django_db_blocker):
    conn = connections["default"]
    with django_db_blocker.unblock():
        saved = dict(conn.settings_dict)
        conn.close()
        conn.settings_dict.update({"HOST": "127.0.0.1", "PORT": str(free_port())})
        try:
            client = Client(raise_request_exception=False)
            page = client.get("/notices/?q=Testshire")
            assert page.status_code == 503
            assert "cannot reach its database" in page.content.decode()
            assert "Traceback" not in page.content.decode()
            api = client.get("/api/v1/programmes/", HTTP_AUTHORIZATION="Token " + "a" * 40)
            assert api.status_code == 503
            assert "cannot reach its database" in api.json()["detail"]
            assert client.get("/health/").status_code == 503
        finally:
            conn.close()
            conn.settings_dict.clear()
            conn.settings_dict.update(saved)
