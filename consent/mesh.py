"""The portal's MESH mailbox, through NHS England's mesh-client, configured by settings.

MESH (Message Exchange for Social Care and Health) carries files between NHS
organisations and national services. The portal sends each national opt-out check's
file from its mailbox (PHM_MESH_MAILBOX) to the national service's (PHM_NDOP_MAILBOX) and
reads the replies from its inbox. Every failure of MESH, the network or the server is
raised as MeshUnavailable, worded for the check's page.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import requests
from django.conf import settings
from mesh_client import MeshClient, MeshError

APPLICATION = "phm-portal"


class MeshUnavailable(Exception):
    """MESH could not be reached or refused the request; the words say what happened."""


def configured() -> bool:
    """Return whether checks go to the national service over MESH (else by hand)."""
    return bool(settings.PHM_MESH_URL)


@dataclass(frozen=True)
class Received:
    """A message read from the inbox: its id, the names it carries, and its content."""

    message_id: str
    local_id: str
    subject: str
    filename: str
    sender: str
    data: bytes

    def names(self) -> set[str]:
        """Return the names that may match a check's local id (".dat" taken off the file)."""
        stem = self.filename[:-4] if self.filename.lower().endswith(".dat") else self.filename
        return {name.strip() for name in (self.local_id, self.subject, stem) if name.strip()}


def _words(exc: Exception) -> str:
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"MESH answered {exc.response.status_code}: {exc.response.text[:300]}".strip()
    if isinstance(exc, requests.ConnectionError):
        return f"MESH could not be reached at {settings.PHM_MESH_URL}."
    if isinstance(exc, requests.Timeout):
        return "MESH did not answer in time."
    return f"MESH refused the request: {exc}"[:500]


class Mailbox:
    """The portal's mailbox: send, list, read and acknowledge, each raising MeshUnavailable."""

    def __init__(self, client: MeshClient) -> None:
        self._client = client

    def send(self, *, recipient: str, data: bytes, name: str, workflow_id: str) -> str:
        """Send the file named `name` (also its subject and local id); return the message id."""
        try:
            return self._client.send_message(
                recipient,
                data,
                workflow_id=workflow_id,
                filename=f"{name}.dat",
                local_id=name,
                subject=name,
            )
        except (MeshError, requests.RequestException) as exc:
            raise MeshUnavailable(_words(exc)) from exc

    def message_ids(self) -> list[str]:
        """Return the ids of the messages waiting in the inbox."""
        try:
            return list(self._client.iterate_message_ids())
        except (MeshError, requests.RequestException) as exc:
            raise MeshUnavailable(_words(exc)) from exc

    def read(self, message_id: str) -> Received:
        """Return a message of the inbox with its content (it stays there until acknowledged)."""
        try:
            message = self._client.retrieve_message(message_id)
            try:
                data = message.read()
            finally:
                message.close()
        except (MeshError, requests.RequestException) as exc:
            raise MeshUnavailable(_words(exc)) from exc
        return Received(
            message_id=message_id,
            local_id=str(getattr(message, "local_id", "") or ""),
            subject=str(getattr(message, "subject", "") or ""),
            filename=str(getattr(message, "filename", "") or ""),
            sender=str(getattr(message, "sender", "") or ""),
            data=data,
        )

    def acknowledge(self, message_id: str) -> None:
        """Acknowledge a message: MESH removes it from the inbox."""
        try:
            self._client.acknowledge_message(message_id)
        except (MeshError, requests.RequestException) as exc:
            raise MeshUnavailable(_words(exc)) from exc


@contextmanager
def mailbox() -> Iterator[Mailbox]:
    """Open the portal's mailbox (a handshake first), closing the connection after use."""
    if not configured():
        raise MeshUnavailable("MESH is not configured (PHM_MESH_URL is not set).")
    cert = None
    if settings.PHM_MESH_CLIENT_CERT:
        cert = (settings.PHM_MESH_CLIENT_CERT, settings.PHM_MESH_CLIENT_KEY)
    try:
        client = MeshClient(
            settings.PHM_MESH_URL,
            settings.PHM_MESH_MAILBOX,
            settings.PHM_MESH_PASSWORD,
            shared_key=settings.PHM_MESH_SHARED_KEY.encode(),
            cert=cert,
            verify=settings.PHM_MESH_CA_BUNDLE or None,
            # Retries are the portal's (with backoff, shown on the check), not hidden here.
            max_retries=0,
            timeout=60,
            application_name=APPLICATION,
        )
    except (MeshError, requests.RequestException, OSError) as exc:
        raise MeshUnavailable(_words(exc)) from exc
    try:
        try:
            client.handshake()
        except (MeshError, requests.RequestException) as exc:
            raise MeshUnavailable(_words(exc)) from exc
        yield Mailbox(client)
    finally:
        client.close()
