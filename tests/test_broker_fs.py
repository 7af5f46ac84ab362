"""The serverless broker (dashboard/broker_fs.py): a worker polling the folder while a message is
being written sees no message, never an empty one (kombu's own filesystem transport shows it one,
and the worker dies on the JSONDecodeError; issue 12's demo run)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from kombu import Connection
from kombu.transport import filesystem

from dashboard import broker_fs


def _connection(tmp_path: Path, transport: object) -> Connection:
    folder = tmp_path / "broker"
    for sub in ("out", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return Connection("filesystem://", transport=transport, transport_options={
        "data_folder_in": str(folder / "out"), "data_folder_out": str(folder / "out"),
        "processed_folder": str(folder / "processed"), "control_folder": str(folder / "control"), "store_processed": False,
    })


def _put_while_a_reader_polls(tmp_path: Path, transport: object, module: object, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Put one message; at the moment its payload is serialised, another channel polls the queue.
    Returns what that poll saw: "empty" (no message), a payload, or the error it raised."""
    seen: list[str] = []
    with _connection(tmp_path, transport) as writer, _connection(tmp_path, transport) as reader:
        poller = reader.channel()
        real_dumps = module.dumps  # type: ignore[attr-defined]

        def poll() -> None:
            try:
                seen.append(json.dumps(poller._get("q")))
            except filesystem.Empty:
                seen.append("empty")
            except ValueError as exc:  # JSONDecodeError: the payload was read before it was written
                seen.append(f"error: {type(exc).__name__}")

        def dumps_while_polled(payload: object) -> str:
            poll()
            return str(real_dumps(payload))

        monkeypatch.setattr(module, "dumps", dumps_while_polled)
        writer.channel()._put("q", {"body": "x"})
        monkeypatch.undo()
        poll()
    return seen


def test_a_message_is_invisible_until_written_whole(tmp_path, monkeypatch):
    assert _put_while_a_reader_polls(tmp_path, broker_fs.Transport, broker_fs, monkeypatch) == ["empty", '{"body": "x"}']
    assert list((tmp_path / "broker" / "out").iterdir()) == []  # no partial file is left behind


def test_kombus_own_transport_shows_a_reader_the_empty_file(tmp_path, monkeypatch):
    """The bug the subclass exists for: if kombu fixes it, this fails and the subclass can go."""
    seen = _put_while_a_reader_polls(tmp_path, filesystem.Transport, filesystem, monkeypatch)
    assert seen == ["error: JSONDecodeError", "empty"]  # the worker dies, and the message is lost


def test_the_serverless_settings_use_it(settings):
    if settings.CELERY_BROKER_URL != "filesystem://":
        pytest.skip("REDIS_URL is set: the broker is Redis")
    assert settings.CELERY_BROKER_TRANSPORT == "dashboard.broker_fs:Transport"
