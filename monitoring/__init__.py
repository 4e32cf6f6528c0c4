"""Drift and concept-drift logic, prediction log and metrics; generated reports are git-ignored."""
