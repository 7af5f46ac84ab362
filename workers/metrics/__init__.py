"""Reads for /metrics: what our own machinery did, from the database (so every web process reports
the same figures, whichever Celery process did the work)."""
