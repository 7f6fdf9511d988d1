"""temporary: ingest.py still imports it"""

from .catch_up import scheduling_state as run_due_jobs  # noqa: F401
