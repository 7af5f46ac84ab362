"""The jobs list (page and API): newest first, filtered, paginated with a capped count."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from workers.models import Job, WorkerGroup


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    total: int  # exact when ``total_capped`` is False, else JOBS_COUNT_CAP ("at least")
    page: int
    page_size: int
    total_capped: bool = False
    more: bool = False  # a row exists after this page (known without counting every match)

    @property
    def has_next(self) -> bool:
        return self.more

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


# Counting every job of a 30-day fleet (millions of rows) costs more than the page itself; the
# count stops here and the pages say "more than 10,000".
JOBS_COUNT_CAP = 10_000


def jobs_page(
    *, group_ids: list[int] | None = None, status: str | None = None, since: datetime | None = None,
    page: int = 1, page_size: int = 50,
) -> JobPage:
    """Jobs newest first, filtered and paginated. Two queries (a count that stops after
    JOBS_COUNT_CAP matches, then the page plus one row to know whether another page follows)."""
    jobs = Job.objects.select_related("group", "account")
    if group_ids is not None:
        jobs = jobs.filter(group_id__in=group_ids)
    if status:
        jobs = jobs.filter(status__iexact=status)
    if since is not None:
        jobs = jobs.filter(created_at__gte=since)
    counted = jobs.order_by()[: JOBS_COUNT_CAP + 1].count()
    capped = counted > JOBS_COUNT_CAP
    total = min(counted, JOBS_COUNT_CAP)
    offset = (page - 1) * page_size
    rows: list[Job] = []
    if offset < counted or capped:
        rows = list(jobs.order_by("-created_at", "-pk")[offset : offset + page_size + 1])
    more = len(rows) > page_size
    return JobPage(jobs=rows[:page_size], total=total, page=page, page_size=page_size, total_capped=capped, more=more)


def group_choices() -> list[tuple[int, str, str]]:
    """(id, name, account) of live groups for filter drop-downs. One query."""
    return list(
        WorkerGroup.objects.filter(removed_at__isnull=True).order_by("name", "account__name").values_list("pk", "name", "account__name")
    )
