"""Pure rules about Azure job statuses: outcome buckets, terminal statuses, the not-available failure.

Azure's job status is an open set (New, Queued, Running, Completed, Failed, ... and strings added
later). Pages, the API, the rollups and the latency reads all bucket it through ``outcome`` into
``OUTCOMES``; anything unrecognised is "other".
"""
from __future__ import annotations

import re

# Outcomes we count separately; any other status (New, Running, Queued, unknown strings...) is "other".
OUTCOMES: tuple[str, ...] = ("completed", "failed", "stopped", "suspended", "other")
_OUTCOME_OF = {"completed": "completed", "failed": "failed", "stopped": "stopped", "suspended": "suspended"}
# Statuses after which a job will not start or run any more (Suspended can resume, but is not queued).
TERMINAL_STATUSES: tuple[str, ...] = ("Completed", "Failed", "Stopped", "Suspended")

# "Failed to start, as hybrid worker was not available when scheduled job started, ..." and the
# docs' variant "wasn't available".
NOT_AVAILABLE_PHRASES: tuple[str, ...] = ("hybrid worker was not available", "hybrid worker wasn't available")
_NOT_AVAILABLE_RE = re.compile(r"hybrid worker (?:was not|wasn't|wasn’t) available", re.IGNORECASE)


def outcome(status: str) -> str:
    """Map an Azure job status (an open set) to one of OUTCOMES; unknown strings are "other"."""
    return _OUTCOME_OF.get((status or "").strip().lower(), "other")


def empty_outcomes() -> dict[str, int]:
    """A zero count for every outcome, in ``OUTCOMES`` order."""
    return {name: 0 for name in OUTCOMES}


def is_terminal(status: str) -> bool:
    """Whether a job with this status will not start or run any more."""
    return outcome(status) != "other"


def is_not_available_failure(status: str, exception: str) -> bool:
    """The service's own symptom for a group with no live member when the job was due."""
    return outcome(status) == "failed" and bool(exception) and bool(_NOT_AVAILABLE_RE.search(exception))
