"""The embedded broker (``filesystem://``: one machine, no Redis): kombu's filesystem transport,
with every message whole before a consumer can see it.

kombu creates a message's file, then writes into it. A consumer listing the folder in between
takes the empty file, fails to decode it, deletes it and stops its worker: one message lost and
a worker down (seen with the web, two workers, beat and Flower sharing the folders). Here a
message is written under a name no consumer takes (``….msg.part``), then renamed into place,
which is atomic within one filesystem. A file that still cannot be decoded (left by an older
version, or damaged on disk) is logged and skipped instead of stopping the worker.

Settings select it for ``filesystem://`` (``CELERY_BROKER_TRANSPORT``).
"""

from __future__ import annotations

import logging
import os
import uuid
from time import monotonic

from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

logger = logging.getLogger("slabuddy.broker")

PARTIAL_SUFFIX = ".part"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        # Named as kombu names them (consumers take files in name order, oldest first).
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + PARTIAL_SUFFIX
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue):
        while True:  # until a message, or Empty
            try:
                return super()._get(queue)
            except ValueError:  # json.JSONDecodeError: the file was taken (and removed) all the same
                logger.error("broker_message_unreadable queue=%s: a message file that could not be "
                             "decoded was dropped", queue)


class Transport(filesystem.Transport):
    Channel = Channel
