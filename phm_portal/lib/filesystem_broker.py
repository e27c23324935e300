"""The embedded Celery broker: kombu's filesystem transport, each message written whole,
and a waiting worker woken as a message arrives.

kombu's filesystem transport creates a message's file under its final name, then writes
it. A worker polling the folder may take the file in between: it reads an empty message,
stops with "Unrecoverable error: JSONDecodeError", and the message is lost (a writer
killed in between leaves such a file behind too). Here a message is written under a name
no reader takes, then renamed into place, which is atomic within a folder: a reader sees
a whole message or none.

kombu's transport looks at the folder again every `polling_interval` while it has nothing
to deliver: each step of a job (its start, then its chunks) waited half an interval on
average. On Linux a worker waits instead until a message arrives (an inotify watch of
the folder: IN_MOVED_TO, or IN_CLOSE_WRITE for a writer that writes in place) or, where
it holds all the messages it may (its prefetch limit), until a task's message is
acknowledged or rejected and frees room (a pipe its own acknowledgements write to). It
still looks at least every IDLE_WAIT seconds, so a message the watch cannot see (a
folder shared over the network) is found then. Elsewhere the folder is polled, as kombu
does.
"""

from __future__ import annotations

import contextlib
import os
import select
import uuid
from queue import Empty
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem, virtual
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

try:
    from inotify_simple import INotify, flags
except (ImportError, OSError):  # not Linux: the folder is polled, as kombu does
    INotify = None

# The longest a worker waiting for a message goes without looking at the folder itself.
IDLE_WAIT = 1.0


class QoS(virtual.QoS):
    """kombu's prefetch accounting; the room an acknowledgement makes wakes the worker."""

    def ack(self, delivery_tag) -> None:
        super().ack(delivery_tag)
        self.channel.connection.wake()

    def reject(self, delivery_tag, requeue=False) -> None:
        super().reject(delivery_tag, requeue=requeue)
        self.channel.connection.wake()


class Channel(filesystem.Channel):
    QoS = QoS

    def _put(self, queue, payload, **kwargs) -> None:
        """Put a message on the queue: written aside, then renamed into the queue's folder."""
        # The name kombu gives, so that readers order and pick messages as before.
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # A reader takes only names whose part after the first dot is "<queue>.msg".
        partial = os.path.join(self.data_folder_out, f".{name}.partial")
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class _Wakeups:
    """What a waiting worker wakes on: an inotify watch of the queue folder and a pipe its
    own acknowledgements write to; made in the process that waits on them."""

    def __init__(self, folder: str) -> None:
        self.pid = os.getpid()
        self.inotify = INotify()
        try:
            self.inotify.add_watch(folder, flags.MOVED_TO | flags.CLOSE_WRITE)
            self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        except BaseException:
            self.inotify.close()
            raise
        self._poll = select.poll()
        self._poll.register(self.inotify.fileno(), select.POLLIN)
        self._poll.register(self._read, select.POLLIN)

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # full: a wake-up is waiting already
            os.write(self._write, b"!")

    def wait(self, seconds: float) -> None:
        """Return once something happened since the last wait, or after `seconds`.

        What happened while the folder was being read is still pending: it returns at once.
        """
        if self._poll.poll(max(1, round(seconds * 1000))):
            self.inotify.read(timeout=0)
            with contextlib.suppress(BlockingIOError):
                os.read(self._read, 4096)

    def close(self) -> None:
        self.inotify.close()
        os.close(self._read)
        os.close(self._write)


class Transport(filesystem.Transport):
    Channel = Channel

    _wakeups: _Wakeups | None = None
    _no_wakeups = False

    def drain_events(self, connection, timeout=None):
        """Deliver the next message, waiting at most `timeout` seconds: kombu's loop, but
        it waits for a wake-up where kombu sleeps a polling interval."""
        wakeups = self._wakeups_here()
        if wakeups is None:
            return super().drain_events(connection, timeout)
        started = monotonic()
        while True:
            try:
                self.cycle.get(self._deliver, timeout=timeout)
                return
            except Empty:
                left = IDLE_WAIT if timeout is None else timeout - (monotonic() - started)
                if left <= 0:
                    raise TimeoutError from None  # socket.timeout, as kombu raises
                wakeups.wait(min(left, IDLE_WAIT))

    def wake(self) -> None:
        """Wake this process's wait for a message (a message acknowledged made room)."""
        wakeups = self._wakeups
        if wakeups is not None and wakeups.pid == os.getpid():
            wakeups.wake()

    def _wakeups_here(self) -> _Wakeups | None:
        if INotify is None or self._no_wakeups:
            return None
        if self._wakeups is None or self._wakeups.pid != os.getpid():  # made before a fork
            folder = self.client.transport_options.get("data_folder_in", "data_in")
            try:
                self._wakeups = _Wakeups(folder)
            except (OSError, AttributeError):  # no folder, no inotify (watches) here: poll
                self._no_wakeups = True
                return None
        return self._wakeups

    def close_connection(self, connection) -> None:
        wakeups = self._wakeups
        if wakeups is not None and wakeups.pid == os.getpid():
            self._wakeups = None
            wakeups.close()
        super().close_connection(connection)
