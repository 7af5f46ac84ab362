"""``python -m tests.estate``: issue 13's estate run (dev tool, not product)."""
