"""The demo run's pure judgement: no I/O, no clock. Emails (subject + plain text) are parsed into
pages, matched to the emulator's scenarios (its ground truth), and each scenario that began during
the run early enough to be detectable is judged: paged exactly once, with the right cause, with the
outage start printed within one poll interval of the scenario's start. Also the three figures of
issue 12's third "Done when" bullet (latency vs overview, capacity 7 d vs 30 d, correlations)."""
from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DIAGNOSIS_SOURCE = Path(__file__).resolve().parents[2] / "workers" / "rules" / "diagnosis.py"

# Scenario kind -> the diagnosis codes (workers/rules/diagnosis.py) that name it. A V2 worker whose
# Automation lastSeen stops while its heartbeat continues reads the same whether the worker service
# stopped or outbound 443 is blocked (diagnosis.py says so), and TLS interception on a V2 worker (no
# event 4502) reads as blocked outbound: the email must NAME the expected cause, as the probable cause
# or as "Also possible"; whether it was the probable one is reported too.
EXPECTED_CAUSES: dict[str, tuple[str, ...]] = {
    "agent_stopped": ("agent_stopped",),
    "outbound_blocked": ("outbound_blocked",),
    "tls_intercepted": ("tls_interception", "outbound_blocked"),
    "site_down": ("agent_stopped",),
    "flapping": (),  # a FLAPPING email is the page; its cause is whatever the down phase reads as
    "under_spec": ("resource_pressure",),
    "service_stopped": ("service_stopped",),
    "identity_missing": ("identity_missing",),
    "job_limit": ("job_limit",),
    "extension_failed": ("extension_failed",),
    "arc_disconnected": ("arc_disconnected",),
    "vm_deallocated": ("vm_stopped",),
}
PAGE_KINDS = ("down", "flapping", "pressure")

_ROW_SINGLE = re.compile(r"^\* (?P<name>\S+) — (?P<status>\S+) since (?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC")
_ROW_MEMBERS = re.compile(r"^\* (?P<name>\S+) — [^,]+, last seen (?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC")
_ROW_BACK = re.compile(r"^\* (?P<name>\S+) — \S+ \(back since ")
_CAUSE = re.compile(r"^\s*(?P<which>Probable cause|Also possible)(?: \([^)]*\))?: (?P<text>.+)$")


def diagnosis_titles(source: str | None = None) -> dict[str, set[str]]:
    """code -> every title ``Diagnosis(code, title, ...)`` is built with in workers/rules/diagnosis.py."""
    tree = ast.parse(source if source is not None else DIAGNOSIS_SOURCE.read_text())
    titles: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Diagnosis" and len(node.args) >= 2:
            code = node.args[0]
            if isinstance(code, ast.Constant):
                titles.setdefault(str(code.value), set()).update(_title_texts(node.args[1]))
    return titles


def _title_texts(node: ast.expr) -> list[str]:
    """A title's possible texts: a constant, both arms of ``a if c else b``, an f-string's fixed prefix
    (matched with ``startswith``)."""
    if isinstance(node, ast.Constant):
        return [str(node.value)]
    if isinstance(node, ast.IfExp):
        return _title_texts(node.body) + _title_texts(node.orelse)
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        return [str(node.values[0].value)]
    return []


@dataclass
class Email:
    received: float  # epoch seconds
    subject: str
    text: str


@dataclass
class Page:
    """One parsed email."""

    kind: str  # down | reminder | recovered | blind | restored | flapping | stable | pressure | pressure_recovered | test | other
    subject: str
    received: float
    workers: list[str] = field(default_factory=list)
    starts: dict[str, datetime] = field(default_factory=dict)  # worker -> outage start printed in the email
    causes: list[tuple[str, bool]] = field(default_factory=list)  # (text after "Probable cause: ", probable?)
    site_outage: bool = False


@dataclass
class Scenario:
    id: int
    kind: str
    target: str
    workers: list[str]
    start: datetime
    end: datetime
    source: str

    @classmethod
    def from_api(cls, row: dict[str, Any]) -> Scenario:
        return cls(int(row["id"]), str(row["kind"]), str(row["target"]), [str(w) for w in row.get("workers") or []],
                   parse_iso(str(row["start"])), parse_iso(str(row["end"])), str(row.get("source", "")))


def parse_iso(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def classify(subject: str) -> str:
    for prefix, kind in (("STILL DOWN ", "reminder"), ("DOWN ", "down"), ("BLIND ", "blind"), ("RESTORED ", "restored"),
                         ("FLAPPING ", "flapping"), ("STABLE ", "stable"), ("PRESSURE ", "pressure")):
        if subject.startswith(prefix):
            return kind
    if subject.startswith("RECOVERED "):
        return "pressure_recovered" if " from CPU/memory pressure " in subject else "recovered"
    return "test" if "test" in subject.lower() else "other"


def parse_email(mail: Email) -> Page:
    page = Page(classify(mail.subject), mail.subject, mail.received)
    page.site_outage = "possible site or network outage" in mail.subject
    if page.kind in ("flapping", "stable", "pressure"):
        # FLAPPING name: ... / STABLE name: ... / PRESSURE name[ (group g)] — ... (older: "name in group g")
        name = mail.subject.split(" ", 1)[1].split(":", 1)[0].split(" — ", 1)[0].split(" in group ", 1)[0]
        name = name.split(" (group ", 1)[0]
        page.workers = [name.strip()]
    for line in mail.text.splitlines():
        row = _ROW_SINGLE.match(line) or _ROW_MEMBERS.match(line)
        if row:
            page.workers.append(row["name"])
            page.starts[row["name"]] = datetime.strptime(row["at"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            continue
        back = _ROW_BACK.match(line)
        if back:
            page.workers.append(back["name"])
            continue
        cause = _CAUSE.match(line)
        if cause:
            page.causes.append((cause["text"], cause["which"] == "Probable cause"))
    page.workers = list(dict.fromkeys(page.workers))
    return page


def named_causes(page: Page, titles: dict[str, set[str]]) -> list[tuple[str, bool]]:
    """(diagnosis code, probable?) for every cause line of the email that starts with a known title."""
    found = []
    for text, probable in page.causes:
        for code, names in titles.items():
            if any(text.startswith(t) for t in names):
                found.append((code, probable))
                break
    return found


@dataclass
class Verdict:
    scenario: dict[str, Any]
    pages: list[str]
    once: bool
    cause_ok: bool
    cause_primary: bool
    causes_named: list[str]
    start_printed: str | None
    start_delta_seconds: float | None
    start_ok: bool
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.once and self.cause_ok and self.start_ok


@dataclass
class Judgement:
    judged: list[Verdict]
    excluded: list[dict[str, Any]]  # scenario + reason
    blind: list[str]
    false_pages: list[str]  # pages matching no scenario, or a scenario that ended before the run
    ongoing_pages: list[str]  # pages for a scenario active since before the run (e.g. under_spec)
    other_emails: list[str]  # recoveries, reminders, ... (not pages)

    @property
    def ok(self) -> bool:
        return not self.blind and not self.false_pages and all(v.ok for v in self.judged)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "judged": [{**asdict(v), "ok": v.ok} for v in self.judged], "ok": self.ok}


def _scenario_row(s: Scenario, run_start: datetime) -> dict[str, Any]:
    return {"id": s.id, "kind": s.kind, "target": s.target, "workers": s.workers, "start": s.start.isoformat(),
            "end": s.end.isoformat(), "source": s.source,
            "start_minutes_into_run": round((s.start - run_start).total_seconds() / 60, 1)}


def judge(scenarios: Sequence[Scenario], emails: Iterable[Email], *, run_start: datetime, run_end: datetime,
          detection: timedelta, tolerance: timedelta, titles: dict[str, set[str]]) -> Judgement:
    """Match every page to the scenarios it names and judge each scenario detectable in the run.

    A scenario is judged when it started at or after ``run_start`` (the URL) and at least
    ``detection`` (the time the alert needs: offline thresholds, group wait, sending) before
    ``run_end`` (when the emails were read). A page belongs to a scenario when it names one of its
    workers and arrived between the scenario's start and its end plus ``detection``.
    """
    pages = [parse_email(m) for m in sorted(emails, key=lambda m: m.received)]
    blind = [p.subject for p in pages if p.kind == "blind"]
    other = [p.subject for p in pages if p.kind not in PAGE_KINDS and p.kind != "blind"]
    claimed: dict[int, list[Page]] = {s.id: [] for s in scenarios}
    false_pages: list[str] = []
    ongoing: list[str] = []
    for p in (p for p in pages if p.kind in PAGE_KINDS):
        at = datetime.fromtimestamp(p.received, UTC)
        owners = [s for s in scenarios if set(p.workers) & set(s.workers) and s.start <= at <= s.end + detection]
        for s in owners:
            claimed[s.id].append(p)
        if not owners:
            past = [s for s in scenarios if set(p.workers) & set(s.workers) and s.end < at]
            last = max(past, key=lambda s: s.end) if past else None
            why = (f"its worker's last scenario, {last.kind}, ended at {last.end:%Y-%m-%d %H:%M} UTC: historical"
                   if last else "no scenario covers it")
            false_pages.append(f"{p.subject} (names {', '.join(p.workers) or 'no worker'}; {why})")
        elif all(s.start < run_start for s in owners):
            if any(s.end + detection >= run_start for s in owners):
                ongoing.append(p.subject)
            else:
                false_pages.append(f"{p.subject} (a scenario that ended before the run: historical)")
    judged: list[Verdict] = []
    excluded: list[dict[str, Any]] = []
    for s in sorted(scenarios, key=lambda s: s.start):
        row = _scenario_row(s, run_start)
        if s.start < run_start:
            reason = "ended before the run (history)" if s.end < run_start else "began before the run (ongoing)"
            excluded.append({**row, "reason": reason})
            continue
        if s.start + detection > run_end:
            when = "has not begun" if s.start > run_end else "began"
            excluded.append({**row, "reason": f"{when} less than {detection.total_seconds() / 60:g} min (the detection delay) "
                                              "before the emails were read"})
            continue
        judged.append(_verdict(s, claimed[s.id], row, tolerance=tolerance, titles=titles))
    # A page claimed only by judged-or-excluded scenarios inside the run is fine; a judged scenario's
    # extra pages fail it through ``once``.
    return Judgement(judged, excluded, blind, false_pages, ongoing, other)


def _verdict(s: Scenario, pages: list[Page], row: dict[str, Any], *, tolerance: timedelta,
             titles: dict[str, set[str]]) -> Verdict:
    notes: list[str] = []
    expected = EXPECTED_CAUSES.get(s.kind)
    if s.kind == "flapping":
        counted = [p for p in pages if p.kind == "flapping"]
        if len(counted) != len(pages):
            notes.append(f"{len(pages) - len(counted)} other page(s) for the flapping worker")
    else:
        counted = pages
    first = counted[0] if counted else None
    codes = named_causes(first, titles) if first else []
    if expected is None:
        cause_ok, primary = False, False
        notes.append(f"no expected diagnosis known for kind {s.kind!r}")
    elif not expected:
        cause_ok = primary = first is not None
    else:
        cause_ok = any(c in expected for c, _ in codes)
        primary = any(c in expected and probable for c, probable in codes)
    if s.kind == "site_down" and first is not None and not first.site_outage:
        notes.append("the email does not call it a possible site or network outage")
    printed = [first.starts[w] for w in s.workers if first and w in first.starts]
    if s.kind in ("flapping", "under_spec"):
        start_ok, delta, shown = True, None, None
        notes.append("its email prints no outage start: the start time is not judged")
    elif printed:
        earliest = min(printed)
        delta = (earliest - s.start).total_seconds()
        start_ok, shown = abs(delta) <= tolerance.total_seconds(), earliest.isoformat()
    else:
        start_ok, delta, shown = False, None, None
        if first is not None:
            notes.append("the email prints no outage start for the scenario's workers")
    return Verdict(row, [p.subject for p in pages], len(counted) == 1, cause_ok, primary,
                   [f"{c}{' (probable)' if p else ' (also possible)'}" for c, p in codes], shown, delta, start_ok, notes)


# --- bullet 3: the figures right after the URL -------------------------------------------------


def relative_difference(a: float, b: float) -> float:
    """|a - b| / max(|a|, |b|); 0 when both are 0."""
    top = max(abs(a), abs(b))
    return 0.0 if top == 0 else abs(a - b) / top


def overview_total(csv_rows: Iterable[dict[str, str]]) -> int:
    """The overview's 24 h job total: every outcome column of every group row (overview.csv)."""
    cols = ("jobs_24h_completed", "jobs_24h_failed", "jobs_24h_stopped", "jobs_24h_suspended", "jobs_24h_other")
    return sum(int(float(r[c] or 0)) for r in csv_rows for c in cols)


def fleet_jobs_per_hour(csv_rows: Iterable[dict[str, str]]) -> float:
    """The capacity page's jobs/h (mean) summed over the groups (capacity groups CSV)."""
    return sum(float(r["arrivals_mean_per_h"] or 0) for r in csv_rows)


def under_spec_workers(scenarios: Iterable[Scenario]) -> list[str]:
    return [w for s in scenarios if s.kind == "under_spec" for w in s.workers]


def figures_verdict(*, latency_total: int, overview_jobs: int, jobs_h_7d: float, jobs_h_30d: float,
                    first_finding_worker: str | None, under_spec: Sequence[str]) -> dict[str, Any]:
    lat = relative_difference(latency_total, overview_jobs)
    cap = relative_difference(jobs_h_7d, jobs_h_30d)
    return {
        "latency_24h_jobs": latency_total, "overview_24h_jobs": overview_jobs, "latency_vs_overview": round(lat, 4),
        "latency_ok": lat <= 0.05 and overview_jobs > 0,
        "capacity_jobs_per_h_7d": round(jobs_h_7d, 2), "capacity_jobs_per_h_30d": round(jobs_h_30d, 2),
        "capacity_7d_vs_30d": round(cap, 4), "capacity_ok": cap < 0.10 and jobs_h_7d > 0,
        "correlations_first": first_finding_worker, "under_spec": list(under_spec),
        "correlations_ok": first_finding_worker is not None and first_finding_worker in under_spec,
    }
