"""Builders and a real SMTP server for the alerting tests (imported by tests/*/test_alert*.py)."""
from __future__ import annotations

import email
import logging
import email.policy
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from django.test import override_settings

from workers.models import AutomationAccount, HybridWorker, PollRun, StatusChange, WorkerGroup
from workers.services.alert_sending import send_pending
from workers.services.alerts import OutboxResult, process_outbox

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
WAIT = timedelta(seconds=60)  # the default group wait (ALERT_GROUP_WAIT_SECONDS): held alerts go out a WAIT later


def make_account(name: str = "aa-ops") -> AutomationAccount:
    return AutomationAccount.objects.create(
        name=name, subscription_id="sub", resource_group="rg", automation_account=name
    )


def make_group(account: AutomationAccount, name: str, workers: int, *, recipients: str = "", now: datetime = T0) -> WorkerGroup:
    group = WorkerGroup.objects.create(
        account=account, azure_id=f"/sub/{account.name}/{name}", name=name, alert_recipients=recipients
    )
    for i in range(1, workers + 1):
        HybridWorker.objects.create(
            group=group,
            azure_id=f"/sub/{account.name}/{name}/w{i}",
            worker_id=f"{name}-{i}",
            name=f"{name}-{i:02d}",
            status="online",
            last_seen_at=now,
            last_heartbeat_at=now,
        )
    return group


def ok_poll(account: AutomationAccount, at: datetime, *, ok: bool = True, error: str = "", kind: str = "groups") -> PollRun:
    """A poll run as services.polling records it (default: the account's groups poll of a cycle)."""
    return PollRun.objects.create(account=account, kind=kind, started_at=at, finished_at=at, ok=ok, error=error)


def go(worker: HybridWorker, new: str, at: datetime, *, silent_since: datetime | None = None) -> StatusChange:
    """Record a status change the way services.status does (status column + one outbox row).

    ``silent_since``: the last signal time; for offline, signals are moved there and
    ``alert_after`` set to when they crossed the default grace (180 s Automation, 600 s heartbeat);
    by default the worker went silent 610 s before ``at``.
    """
    old = worker.status
    fields: dict[str, object] = {"status": new, "status_changed_at": at}
    if new == "offline":
        last = silent_since or at - timedelta(seconds=610)
        fields.update(last_seen_at=last, last_heartbeat_at=last, alert_after=last + timedelta(seconds=600))
    elif new == "online":
        fields.update(last_seen_at=at, last_heartbeat_at=at, alert_after=at + timedelta(seconds=600))
    HybridWorker.objects.filter(pk=worker.pk).update(**fields)
    for name, value in fields.items():
        setattr(worker, name, value)
    return StatusChange.objects.create(worker=worker, old_status=old, new_status=new, reason=f"test {new}", created_at=at)



def make_fleet(now: datetime = T0) -> tuple[AutomationAccount, WorkerGroup, list[HybridWorker]]:
    """The usual alert fleet: account aa-ops with hrw-win (3 workers, returned in name order) and
    hrw-linux (2 workers), so one Windows worker going down is a lone failure, not the whole account."""
    account = make_account()
    group = make_group(account, "hrw-win", 3, now=now)
    make_group(account, "hrw-linux", 2, now=now)
    return account, group, list(group.workers.order_by("name"))


def tick(now: datetime, *, poll: bool = True) -> OutboxResult:
    """One beat: a successful worker poll for every account (unless ``poll=False``), the outbox, then
    the sender, all at ``now``."""
    if poll:
        for account in AutomationAccount.objects.all():
            ok_poll(account, now)
    result = process_outbox(now=now)
    send_pending(now=now)
    return result


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def subjects(self) -> list[str]:
        with self.lock:
            # Long non-ASCII subjects are folded onto a continuation line; the reader sees one line.
            return [str(m["Subject"]).strip() for m in self.messages]

    def count(self) -> int:
        with self.lock:
            return len(self.messages)


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self.box.lock:
            self.box.messages.append(message)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_smtp(port: int, box: Mailbox) -> Controller:
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    controller = Controller(_Handler(box), hostname="127.0.0.1", port=port)
    controller.start()
    return controller


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def smtp_settings(smtp_port: int) -> Iterator[None]:
    """Django's SMTP backend pointed at 127.0.0.1:<ephemeral port> (server may or may not be up)."""
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=smtp_port,
        EMAIL_TIMEOUT=5,
        ALERT_RECIPIENTS=["oncall@example.com"],
        SITE_URL="https://hrw.example.com",
    ):
        yield


@pytest.fixture
def mailbox(smtp_port: int, smtp_settings: None) -> Iterator[Mailbox]:
    """A real aiosmtpd server on loopback collecting every message it accepts."""
    box = Mailbox("127.0.0.1", smtp_port)
    controller = start_smtp(smtp_port, box)
    try:
        yield box
    finally:
        controller.stop()


def html_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return part.get_content()


def text_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()
