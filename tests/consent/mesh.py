"""NHS England's mesh-sandbox as a real local MESH server, and a stand-in national service.

Tests only (and `make run-mesh`, to watch the exchange locally): the sandbox is the real
server (`uvicorn mesh_sandbox.api:app`, STORE_MODE=file, full authentication), the
mailboxes are folders of MAILBOXES_DATA_DIR. The stand-in plays the national "Check for
National Data Opt-outs" service: it reads its inbox and answers each file in the
service's format, or with a one-line error as the service does.

    python -m tests.consent.mesh      # a sandbox and a stand-in answering every 2 s
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests
from mesh_client import MeshClient

from phm_portal.lib.nhs_number import is_valid

PORTAL_MAILBOX = "PHMPORTAL01"
NDOP_MAILBOX = "NDOPSTANDIN1"
WORKFLOW = "SPINE_NTT_UPHOLDING"
SHARED_KEY = "sandbox-shared-key"
# Every mailbox the sandbox makes from a folder has this password.
PASSWORD = "password"
_LINE = re.compile(rb"^\d{10},$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class MeshSandbox:
    """A mesh-sandbox server in a process of its own, its mailboxes in a folder."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MeshSandbox:
        mailboxes = self.folder / "mailboxes"
        for mailbox in (PORTAL_MAILBOX, NDOP_MAILBOX):
            (mailboxes / mailbox / "in").mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "STORE_MODE": "file",
            "MAILBOXES_DATA_DIR": str(mailboxes),
            "AUTH_MODE": "full",
            "SHARED_KEY": SHARED_KEY,
        }
        log = open(self.folder / "sandbox.log", "wb")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "mesh_sandbox.api:app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning"],
            cwd=self.folder, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mesh-sandbox stopped as it started:\n{self.log()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/messageexchange/_ping", timeout=1).ok:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"mesh-sandbox did not answer in 30 s:\n{self.log()}")

    def log(self) -> str:
        return (self.folder / "sandbox.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def client(self, mailbox: str) -> MeshClient:
        return MeshClient(
            self.url, mailbox, PASSWORD, shared_key=SHARED_KEY.encode(), max_retries=0
        )

    def inbox(self, mailbox: str) -> list[str]:
        """Return the ids of the messages waiting in a mailbox's inbox."""
        with self.client(mailbox) as c:
            return c.list_messages()

    def settings(self) -> dict[str, object]:
        """Return the portal's settings for this sandbox (PHM_MESH_*, PHM_NDOP_*)."""
        return {
            "PHM_MESH_URL": self.url,
            "PHM_MESH_MAILBOX": PORTAL_MAILBOX,
            "PHM_MESH_PASSWORD": PASSWORD,
            "PHM_MESH_SHARED_KEY": SHARED_KEY,
            "PHM_NDOP_MAILBOX": NDOP_MAILBOX,
            "PHM_NDOP_WORKFLOW_ID": WORKFLOW,
        }


def default_opted_out(number: str) -> bool:
    """The stand-in's national register: about 3% of numbers opted out, fixed."""
    return int(number) % 33 == 0


@dataclass
class Answer:
    local_id: str
    kind: str  # "numbers", "error" or "ignored"
    body: bytes


@dataclass
class NationalServiceStandIn:
    """Answers the files in its sandbox inbox as the national service does.

    - a file of "<10 digits>," lines with LF ends: the numbers not opted out, same form;
    - a line that is not that, or an invalid NHS number: one line of error text;
    - a subject or local id with odd characters (a colon, say): no answer at all;
    - with `job_notes`, first a message saying a job was created for the file;
    - `refuse` names local ids to answer with an error whatever they hold.
    """

    sandbox: MeshSandbox
    opted_out: Callable[[str], bool] = default_opted_out
    job_notes: bool = False
    refuse: dict[str, str] = field(default_factory=dict)
    answered: list[Answer] = field(default_factory=list)

    def _reply(self, c: MeshClient, to: str, name: str, body: bytes) -> None:
        c.send_message(
            to, body, workflow_id=WORKFLOW, filename=f"{name}.dat", local_id=name, subject=name
        )

    def answer_all(self) -> list[Answer]:
        """Answer every file waiting; return what was answered, in order."""
        done = []
        with self.sandbox.client(NDOP_MAILBOX) as c:
            for message_id in c.list_messages():
                message = c.retrieve_message(message_id)
                body = message.read()
                name = message.local_id or ""
                sender = message.sender
                message.close()
                done.append(self._answer(c, sender, name, message.subject or "", body))
                c.acknowledge_message(message_id)
        self.answered.extend(done)
        return done

    def _answer(self, c: MeshClient, sender: str, name: str, subject: str, body: bytes) -> Answer:
        if not _FILE_NAME.match(name) or not _FILE_NAME.match(subject):
            return Answer(name, "ignored", b"")
        if self.job_notes:
            note = f"A job has been created in POS to clean the supplied file {name}.\n"
            self._reply(c, sender, name, note.encode())
        if name in self.refuse:
            answer = Answer(name, "error", self.refuse[name].encode())
            self._reply(c, sender, name, answer.body)
            return answer
        lines = body.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for n, line in enumerate(lines, start=1):
            if not _LINE.match(line):
                error = f"ERROR: line {n} is not an NHS number followed by a comma.\n"
                self._reply(c, sender, name, error.encode())
                return Answer(name, "error", error.encode())
            if not is_valid(line[:10].decode()):
                error = f"ERROR: Invalid NHS number on line {n}.\n"
                self._reply(c, sender, name, error.encode())
                return Answer(name, "error", error.encode())
        kept = [line[:10].decode() for line in lines if not self.opted_out(line[:10].decode())]
        reply = "".join(f"{n},\n" for n in kept).encode()
        self._reply(c, sender, name, reply)
        return Answer(name, "numbers", reply)


@contextlib.contextmanager
def running_sandbox(folder: Path | None = None) -> Iterator[MeshSandbox]:
    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mesh-")))
        sandbox = MeshSandbox(folder).start()
        try:
            yield sandbox
        finally:
            sandbox.stop()


def main() -> None:  # pragma: no cover - `make run-mesh`
    folder = Path(os.environ.get("PHM_MESH_SANDBOX_DIR", "var/mesh-sandbox"))
    folder.mkdir(parents=True, exist_ok=True)
    port = int(os.environ.get("PHM_MESH_SANDBOX_PORT", "8700"))
    sandbox = MeshSandbox(folder, port=port)
    with contextlib.ExitStack() as stack:
        sandbox.start()
        stack.callback(sandbox.stop)
        stand_in = NationalServiceStandIn(sandbox, job_notes=True)
        print(f"mesh-sandbox on {sandbox.url}; the stand-in national service answers every 2 s")
        for name, value in sandbox.settings().items():
            print(f"  {name}={value}")
        while True:
            for answer in stand_in.answer_all():
                print(f"answered {answer.local_id}: {answer.kind}", flush=True)
            time.sleep(2)


if __name__ == "__main__":
    main()
