"""The embedded broker's message files: a consumer never sees a message before it is whole, and
a file it cannot decode is skipped instead of stopping the worker."""

import os

import pytest
from kombu import Connection

from base import file_broker


@pytest.fixture
def broker(tmp_path):
    """A connection to folders of its own (kombu keeps queue bindings per process: each test names
    its own queue)."""
    folder = tmp_path / "queue"
    folder.mkdir()
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder),
               "control_folder": str(tmp_path / "control")}
    transport = "base.file_broker:Transport"
    with Connection("filesystem://", transport=transport, transport_options=options) as conn:
        yield conn, folder


def test_the_embedded_settings_use_this_transport(settings):
    if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
        pytest.skip("the embedded run uses the filesystem broker; this run uses Redis")
    assert settings.CELERY_BROKER_TRANSPORT == "base.file_broker:Transport"


def test_a_message_is_renamed_into_place_only_once_it_is_written(broker, monkeypatch):
    conn, folder = broker
    seen_while_writing = []
    replace = os.replace

    def replace_and_look(src, dst):
        # The moment before the rename: what a consumer listing the folder would find.
        seen_while_writing.append(sorted(name for name in os.listdir(folder) if name.endswith(".msg")))
        assert os.path.getsize(src) > 0
        return replace(src, dst)

    monkeypatch.setattr(file_broker.os, "replace", replace_and_look)
    queue = conn.SimpleQueue("whole")
    queue.put({"level": 1})
    assert seen_while_writing == [[]]  # nothing a consumer would take until then
    assert queue.get(timeout=1).payload == {"level": 1}
    assert not [name for name in os.listdir(folder) if name.endswith(file_broker.PARTIAL_SUFFIX)]
    queue.close()


def test_an_empty_or_damaged_message_file_is_skipped_and_the_next_is_delivered(broker, caplog):
    conn, folder = broker
    queue = conn.SimpleQueue("damaged")
    (folder / "0000000001_a.damaged.msg").write_bytes(b"")  # what a half-written file looked like
    (folder / "0000000002_b.damaged.msg").write_bytes(b'{"body": ')
    queue.put({"level": 2})
    assert queue.get(timeout=2).payload == {"level": 2}
    assert caplog.text.count("broker_message_unreadable") == 2
    queue.close()
