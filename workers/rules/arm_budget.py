"""Pure: the names of the ARM read budget's shared state in Redis (the bucket and its counts).

The throttle (``workers.azure.throttle``) writes them; ``/metrics`` (``workers.metrics.selectors``)
reads the counts. A key holds a hash of endpoint, subscription and principal, never the ids.
"""
from __future__ import annotations

import hashlib

BUCKET_PREFIX = "hrw:arm-reads:"
STATS_SUFFIX = ":stats"


def bucket_key(arm_endpoint: str, subscription_id: str, principal: str) -> str:
    """The shared key of one subscription and principal at one ARM endpoint (no secrets in it)."""
    digest = hashlib.sha256(f"{arm_endpoint.lower()}|{subscription_id.lower()}|{principal.lower()}".encode()).hexdigest()
    return f"{BUCKET_PREFIX}{digest[:24]}"


def stats_key(bucket: str) -> str:
    return bucket + STATS_SUFFIX


def budget_of_stats_key(key: str) -> str | None:
    """The budget's hash part of a counts key (the metric label), or None for another key."""
    if not (key.startswith(BUCKET_PREFIX) and key.endswith(STATS_SUFFIX)):
        return None
    return key[len(BUCKET_PREFIX):-len(STATS_SUFFIX)]
