"""Prefect flows: one per file, thin orchestration of the tasks in `tasks/`."""
