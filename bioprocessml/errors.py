"""Errors a user can fix: the CLI prints them as one line and exits non-zero, without a traceback."""


class BioprocessMLError(Exception):
    """Base class for errors caused by input the user controls (files, specs, options)."""


class SpecError(BioprocessMLError):
    """A dataset spec YAML is missing, unreadable or invalid."""


class BatchLoadError(BioprocessMLError):
    """A batch file cannot be read through its dataset spec."""


class VersioningError(BioprocessMLError):
    """The accepted data cannot be versioned, pushed or restored with DVC, or a version is unknown."""
