"""Issue 12's demo run (dev tool, like tests/soak): ``python -m tests.demo_run --minutes 30``."""
