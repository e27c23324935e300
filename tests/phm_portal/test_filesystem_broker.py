"""The embedded broker writes each message whole: a worker polling its folder never reads
half a message (kombu's own filesystem transport lets it, and the worker stops)."""

from __future__ import annotations

import threading
import time

import pytest
from kombu import Connection

from phm_portal.lib import filesystem_broker

MESSAGES = 1500


def connection(folder) -> Connection:
    return Connection(
        "filesystem://",
        transport=filesystem_broker.Transport,
        transport_options={
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
        },
    )


@pytest.fixture
def folder(tmp_path):
    for sub in ("queue", "processed", "control"):
        (tmp_path / sub).mkdir()
    return tmp_path


def test_a_reader_polling_while_messages_are_written_gets_each_whole_and_once(folder):
    def write() -> None:
        with connection(folder) as conn:
            queue = conn.SimpleQueue("jobs")
            for i in range(MESSAGES):
                queue.put({"chunk": i, "padding": "x" * 2000})

    writer = threading.Thread(target=write)
    received, errors = [], []
    with connection(folder) as conn:
        queue = conn.SimpleQueue("jobs")
        writer.start()
        deadline = time.monotonic() + 60
        while len(received) + len(errors) < MESSAGES and time.monotonic() < deadline:
            try:
                message = queue.get(timeout=0.01)
            except queue.Empty:
                continue
            except ValueError as exc:  # a half-written message: JSONDecodeError
                errors.append(exc)
                continue
            received.append(message.payload["chunk"])
            message.ack()
    writer.join()
    assert errors == []
    assert sorted(received) == list(range(MESSAGES))
    assert list((folder / "queue").iterdir()) == []


def test_the_embedded_default_uses_it(tmp_path):
    # In its own process, without CELERY_BROKER_URL (CI sets it to Redis for this one).
    from tests.phm_portal.test_settings import run_manage

    done = run_manage(
        tmp_path,
        {"PHM_DEMO": "1", "CELERY_BROKER_URL": ""},
        "shell",
        "-c",
        "from phm_portal.celery import app; "
        "print(type(app.connection_for_write().transport).__module__)",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "phm_portal.lib.filesystem_broker"
