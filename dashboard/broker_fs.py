"""The serverless broker (no REDIS_URL: ``make demo``): kombu's filesystem transport, with every
message complete before a worker can see it.

kombu's own ``Channel._put`` creates ``<time>_<uuid>.<queue>.msg`` and only then writes the payload,
while a worker polling the folder moves and reads every ``.msg`` file it lists without locking it: a
worker that lists the file between the two reads an empty payload, raises JSONDecodeError and exits
(then ``manage.py demo`` stops every service). Issue 12's demo run met it under load. Here the
payload is written under a name the reader skips (``….msg.tmp``) and renamed into place, which is
atomic on one file system.
"""
from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    # kombu names the second parameter ``message`` in the virtual base and ``payload`` in the filesystem
    # channel; both call it positionally.
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Put ``payload`` onto ``queue``: written whole under a temporary name, then renamed."""
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = f"{final}.tmp"  # the reader takes only names ending ".<queue>.msg"
        try:
            with open(partial, "wb") as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
