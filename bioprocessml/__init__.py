"""BioProcessML: event-driven MLOps for bioprocess batch data."""

__version__ = "0.1.0"
