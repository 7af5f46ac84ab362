"""Rollup rows for an exact window, with the parts no rollup covers (yet) read from the raw jobs.

The one source of truth for job figures is the Job table; JobHourly/JobDaily only save reading it.
So a window's figures must not depend on whether a rollup has run: ``plan_window`` finds which
whole hours of [start, end] the rollups cover, and ``window_rows`` returns rollup-shaped rows (one
per period and key) that take those hours from JobHourly (or JobDaily, for whole covered days) and
everything else from the raw rows folded the same way (``workers.rules.job_rollups``). The window's
partial first hour and its recent tail are always raw.

An hour counts as covered when the rollup wrote its ``fleet`` marker row (``rollup_jobs`` writes
one for every hour it computes, even with no jobs), computed after the hour had ended, and the hour
ended before the rollup lookback (``JOB_ROLLUP_LOOKBACK_HOURS``): hours inside the lookback are
still being recomputed as polls land, so they are read raw. A fixed number of queries per call.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import F, Min, Q, QuerySet

from workers.latency.selectors.jobs import hybrid_jobs
from workers.latency.selectors.raw_fold import fold_raw
from workers.latency.selectors.windows import WindowSpan
from workers.models import JobDaily, JobHourly
from workers.rules import job_rollups, latency
from workers.rules.coverage import DataSpan

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
LABEL_FIELDS: tuple[str, ...] = ("group__name", "group__account__name", "worker__name")
_ROW_FIELDS = (*job_rollups.KEY_FIELDS, *job_rollups.COUNT_FIELDS, *job_rollups.SUM_FIELDS, *job_rollups.MAX_FIELDS,
               *job_rollups.HIST_FIELDS)


@dataclass(frozen=True)
class WindowPlan:
    """Which whole hours of a window the rollups cover, and the window's data span."""

    span: WindowSpan
    covered: frozenset[datetime]
    data: DataSpan
    # What identifies the stored rollup rows of the covered hours: a digest of their fleet markers
    # (hour, id, computed_at and the hour's fleet totals). A recomputed hour gets new rows (new ids),
    # so a new digest; a database restored under a kept cache differs in its totals.
    rollup_version: str = ""

    def covered_days(self) -> list[datetime]:
        """Whole UTC days inside the window whose 24 hours are all covered."""
        days = {latency.floor_day(h) for h in self.covered}
        return sorted(d for d in days if all(d + HOUR * i in self.covered for i in range(24)))

    def raw_ranges(self) -> list[tuple[datetime, datetime]]:
        """The [a, b) stretches of the window no covered hour holds (the last one ends at span.end)."""
        ranges: list[tuple[datetime, datetime]] = []
        cursor = self.span.start
        for hour in sorted(self.covered):
            if hour > cursor:
                ranges.append((cursor, hour))
            cursor = max(cursor, hour + HOUR)
        if cursor <= self.span.end:
            ranges.append((cursor, self.span.end))
        return ranges


def _ceil_hour(moment: datetime) -> datetime:
    floor = latency.floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def plan_window(span: WindowSpan, *, with_data: bool = True) -> WindowPlan:
    """The covered hours (one query on the fleet marker rows) and the data span (one query, skipped
    when ``with_data`` is False: then the span claims the whole window)."""
    tail_start = latency.floor_hour(span.end - timedelta(hours=settings.JOB_ROLLUP_LOOKBACK_HOURS))
    covered: set[datetime] = set()
    version = hashlib.sha256()
    if not span.exact:
        markers = JobHourly.objects.filter(key="fleet", hour__gte=_ceil_hour(span.start), hour__lt=tail_start)
        fields = ("hour", "pk", "computed_at", "jobs", "queue_sum", "duration_sum", "queue_hist", "duration_hist")
        for hour, pk, computed_at, *content in markers.order_by("hour").values_list(*fields):
            if hour + HOUR <= tail_start and computed_at >= hour + HOUR:
                covered.add(hour)
                version.update(repr((hour, pk, computed_at, content)).encode())
    rollup_version = version.hexdigest()[:32]
    if not with_data:
        return WindowPlan(span=span, covered=frozenset(covered), rollup_version=rollup_version,
                          data=DataSpan.of(span.key, span.start, span.end, span.start, span.end))
    first = hybrid_jobs().filter(created_at__gte=span.start, created_at__lte=span.end).aggregate(first=Min("created_at"))["first"]
    data = DataSpan.of(span.key, span.start, span.end, first, span.end if first is not None else None)
    return WindowPlan(span=span, covered=frozenset(covered), data=data, rollup_version=rollup_version)


def _ranges_q(field: str, ranges: Iterable[tuple[datetime, datetime]], *, end: datetime) -> Q | None:
    q: Q | None = None
    for a, b in ranges:
        part = Q(**{f"{field}__gte": a, f"{field}__lte" if b == end else f"{field}__lt": b})
        q = part if q is None else q | part
    return q


def _hour_ranges(hours: Iterable[datetime]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for hour in sorted(hours):
        if out and out[-1][1] == hour:
            out[-1] = (out[-1][0], hour + HOUR)
        else:
            out.append((hour, hour + HOUR))
    return out


def _scoped(qs: QuerySet, *, scopes: tuple[str, ...] | None, key: str | None) -> QuerySet:
    if key is not None:
        qs = qs.filter(key=key)
    if scopes is not None:
        qs = qs.filter(scope__in=scopes)
    return qs


def window_rows(
    plan: WindowPlan, *, by_day: bool, scopes: tuple[str, ...] | None = None, key: str | None = None,
    group_id: int | None = None, runbook: str | None = None, labels: bool = False, periods: bool = True,
    raw: list[dict] | None = None,
) -> list[dict]:
    """Rollup-shaped rows (``_ROW_FIELDS`` plus "period", and the label fields when ``labels``) of the
    window: covered hours from JobHourly (whole covered days from JobDaily when ``by_day``), the rest
    folded from raw jobs. Periods are hours, or days when ``by_day``. At most three queries.

    ``key`` / ``scopes`` pick rollup rows; ``group_id`` / ``runbook`` cut the raw rows the same way
    (a group+runbook cut exists only in raw rows: then nothing is read from the rollups).
    ``periods=False``: the caller merges per key only; the covered part then comes as one row per key
    ("period" None), computed once per state of the rollups (``_covered_rows``). ``raw``: the window's
    raw rows already folded (``raw_rows``, shared by two calls over the same plan): no raw query.
    """
    covered = set(plan.covered) if not (group_id is not None and runbook is not None) else set()
    rows = _covered_rows(plan, covered, by_day=by_day, scopes=scopes, key=key, labels=labels, periods=periods)
    if raw is not None:
        rows.extend(raw)
    else:
        rows.extend(raw_rows(plan, covered, by_day=by_day, scopes=scopes, key=key, group_id=group_id, runbook=runbook,
                             labels=labels))
    for row in rows:
        row["period"] = row.pop("period_") if periods else None
        row.pop("period_", None)
    return rows


def raw_rows(
    plan: WindowPlan, covered: set[datetime] | None = None, *, by_day: bool, scopes: tuple[str, ...] | None = None,
    key: str | None = None, group_id: int | None = None, runbook: str | None = None, labels: bool = False,
) -> list[dict]:
    """The window's stretches no covered hour holds, folded per period and key (one query, none when
    the rollups cover everything)."""
    covered = set(plan.covered) if covered is None else covered
    uncovered = WindowPlan(span=plan.span, covered=frozenset(covered), data=plan.data)
    q = _ranges_q("created_at", uncovered.raw_ranges(), end=plan.span.end)
    if q is None:
        return []
    return _raw_rows(hybrid_jobs().filter(q), by_day=by_day, scopes=scopes, key=key, group_id=group_id,
                     runbook=runbook, labels=labels)


# The covered part of a window per key is reused while the rollups are unchanged (the digest of
# their markers is in the key), at most this long: a group or account renamed meanwhile shows its
# new name after this many seconds. A cache error is a miss.
COVERED_ROWS_MAX_AGE = 300


def _covered_rows(
    plan: WindowPlan, covered: set[datetime], *, by_day: bool, scopes: tuple[str, ...] | None, key: str | None,
    labels: bool, periods: bool,
) -> list[dict]:
    """The covered hours' rollup rows (JobDaily for whole covered days when ``by_day``): at most two
    queries, none when ``periods`` is False and the same rollup state was read recently."""
    if not covered:
        return []
    cache_key = None
    if not periods and plan.rollup_version:
        digest = hashlib.sha256(repr((plan.rollup_version, sorted(covered), by_day, scopes, key, labels)).encode())
        cache_key = f"latency-covered:{digest.hexdigest()[:32]}"
        try:
            hit = cache.get(cache_key)
        except Exception:  # the cache is an optimisation: down means recompute
            hit = None
        if hit is not None:
            return [dict(row) for row in hit]
    extra = LABEL_FIELDS if labels else ()
    rows: list[dict] = []
    days = plan.covered_days() if by_day else []
    if days:
        daily = _scoped(JobDaily.objects.filter(day__in=days), scopes=scopes, key=key)
        rows.extend(daily.values(*_ROW_FIELDS, *extra, period_=F("day")) if periods else daily.values(*_ROW_FIELDS, *extra))
    covered_in_days = {d + HOUR * i for d in days for i in range(24)}
    q = _ranges_q("hour", _hour_ranges(covered - covered_in_days), end=plan.span.end)
    if q is not None:
        floor = latency.floor_day if by_day else (lambda h: h)
        hourly = _scoped(JobHourly.objects.filter(q), scopes=scopes, key=key)
        for row in (hourly.values(*_ROW_FIELDS, *extra, period_=F("hour")) if periods else hourly.values(*_ROW_FIELDS, *extra)):
            if periods:
                row["period_"] = floor(row["period_"])
            rows.append(row)
    if cache_key is None:
        return rows
    merged = [{**first, **acc.as_fields()} for acc, first in job_rollups.merge_rows(rows, lambda r: r["key"]).values()]
    try:
        cache.set(cache_key, merged, timeout=COVERED_ROWS_MAX_AGE)
    except Exception:  # see above
        pass
    return [dict(row) for row in merged]


def _raw_rows(
    qs: QuerySet, *, by_day: bool, scopes: tuple[str, ...] | None, key: str | None, group_id: int | None,
    runbook: str | None, labels: bool,
) -> list[dict]:
    """Raw jobs folded per (period, key) exactly as the rollup writer folds them: by the database on
    PostgreSQL (``workers.latency.selectors.raw_fold``), in Python elsewhere. One query."""
    if group_id is not None:
        qs = qs.filter(group_id=group_id)
    if runbook is not None:
        qs = qs.filter(runbook=runbook)
    if connection.vendor != "postgresql":
        return _raw_rows_python(qs, by_day=by_day, scopes=scopes, key=key, labels=labels)
    wanted = scopes if scopes is not None else job_rollups.ROLLUP_SCOPES
    if key is not None:
        wanted = tuple(s for s in wanted if s == _KEY_SCOPES.get(key.split(":", 1)[0]))
    rows = fold_raw(qs, by_day=by_day, scopes=wanted, labels=labels)
    return rows if key is None else [r for r in rows if r["key"] == key]


def _raw_rows_python(qs: QuerySet, *, by_day: bool, scopes: tuple[str, ...] | None, key: str | None, labels: bool) -> list[dict]:
    n = len(job_rollups.JOB_FIELDS)
    found = list(qs.values_list(*job_rollups.JOB_FIELDS, *(LABEL_FIELDS if labels else ())))
    names: dict[str, dict] = {}
    if labels:
        for r in found:
            gid, wid, rb = r[0], r[1], r[2]
            for _scope, k, _g, _w, _rb in job_rollups.scope_keys(gid, rb, wid):
                names.setdefault(k, dict(zip(LABEL_FIELDS, r[n:])))
    period = latency.floor_day if by_day else latency.floor_hour
    accs = job_rollups.accumulate_jobs((r[:n] for r in found), period)
    out = []
    for (start, k), acc in accs.items():
        if (key is not None and k != key) or (scopes is not None and acc.scope not in scopes):
            continue
        row = {**acc.as_fields(), "period_": start}
        if labels:
            row.update(names.get(k, dict.fromkeys(LABEL_FIELDS)))
        out.append(row)
    return out


_KEY_SCOPES = {"fleet": job_rollups.FLEET_SCOPE, "g": job_rollups.GROUP_SCOPE, "r": job_rollups.RUNBOOK_SCOPE,
               "w": job_rollups.WORKER_SCOPE}
