"""The embedded broker writes each message whole: a worker polling its folder never reads
half a message (kombu's own filesystem transport lets it, and the worker stops)."""

from __future__ import annotations

import threading
import time
import uuid

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


# A polling interval far longer than any wait below: a consumer that polled would sleep
# through the whole timeout; one woken by the folder or by an acknowledgement does not.
SLOW_POLL = 60.0
TIMEOUT = 20.0


def slow_polling_connection(folder, monkeypatch) -> Connection:
    # Nor does it look at the folder of its own accord in between.
    monkeypatch.setattr(filesystem_broker, "IDLE_WAIT", SLOW_POLL)
    conn = connection(folder)
    conn.transport_options["polling_interval"] = SLOW_POLL
    return conn


def queue_name() -> str:
    # kombu keeps the exchanges a process declared in class-level state: a queue name
    # used with another folder earlier in this process would route nowhere here.
    return f"jobs-{uuid.uuid4().hex}"


def put_later(folder, name: str, payload: dict, delay: float = 0.3) -> threading.Thread:
    def put() -> None:
        time.sleep(delay)
        with connection(folder) as conn:
            conn.SimpleQueue(name).put(payload)

    thread = threading.Thread(target=put)
    thread.start()
    return thread


def test_a_waiting_consumer_is_woken_by_a_message_not_by_its_next_poll(folder, monkeypatch):
    with slow_polling_connection(folder, monkeypatch) as conn:
        name = queue_name()
        queue = conn.SimpleQueue(name)
        writer = put_later(folder, name, {"chunk": 1})
        started = time.monotonic()
        message = queue.get(timeout=TIMEOUT)
        waited = time.monotonic() - started
        writer.join()
        assert message.payload == {"chunk": 1}
        message.ack()
    # Polling, it would have slept min(SLOW_POLL, TIMEOUT) = 20 s before looking again.
    assert waited < TIMEOUT / 4


def test_a_consumer_at_its_prefetch_limit_is_woken_when_a_message_is_acknowledged(
    folder, monkeypatch
):
    name = queue_name()
    with connection(folder) as conn:
        for i in (1, 2):
            conn.SimpleQueue(name).put({"chunk": i})
    with slow_polling_connection(folder, monkeypatch) as conn:
        received = []
        consumer = conn.Consumer(
            conn.SimpleQueue(name).queue,
            callbacks=[lambda body, message: received.append((body, message))],
        )
        consumer.qos(prefetch_count=1)
        with consumer:
            conn.drain_events(timeout=TIMEOUT)
            # One of the two (messages put in the same millisecond come in either order).
            assert len(received) == 1
            # The other waits in the folder: no event will come from it.
            first = received[0][1]
            acker = threading.Timer(0.3, first.ack)
            acker.start()
            started = time.monotonic()
            conn.drain_events(timeout=TIMEOUT)
            waited = time.monotonic() - started
            acker.join()
            assert sorted(body["chunk"] for body, _ in received) == [1, 2]
            received[1][1].ack()
    assert waited < TIMEOUT / 4


def test_without_inotify_the_folder_is_polled_as_kombu_does(folder, monkeypatch):
    monkeypatch.setattr(filesystem_broker, "INotify", None)
    with connection(folder) as conn:
        conn.transport_options["polling_interval"] = 0.05
        name = queue_name()
        queue = conn.SimpleQueue(name)
        writer = put_later(folder, name, {"chunk": 7})
        message = queue.get(timeout=TIMEOUT)
        writer.join()
        assert message.payload == {"chunk": 7}
        message.ack()
        assert conn.transport._wakeups is None
