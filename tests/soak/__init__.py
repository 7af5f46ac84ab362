"""Dev-only multi-process soak (``python -m tests.soak``): the real product as several processes."""
