"""The embedded Celery broker: kombu's filesystem transport, each message written whole.

kombu's filesystem transport creates a message's file under its final name, then writes
it. A worker polling the folder may take the file in between: it reads an empty message,
stops with "Unrecoverable error: JSONDecodeError", and the message is lost (a writer
killed in between leaves such a file behind too). Here a message is written under a name
no reader takes, then renamed into place, which is atomic within a folder: a reader sees
a whole message or none.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
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


class Transport(filesystem.Transport):
    Channel = Channel
