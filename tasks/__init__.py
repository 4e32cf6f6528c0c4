"""Prefect tasks grouped by stage: thin wrappers with retries around plain functions."""
