"""User-facing errors: the CLI prints them on one line and exits with code 2."""

from __future__ import annotations


class VulnsteerError(Exception):
    """Bad input from the user (file, value, model name). The message says what is wrong and what to do."""

    exit_code = 2


class DataError(VulnsteerError):
    """A dataset file or root is missing, empty, unreadable or malformed."""


class ModelError(VulnsteerError):
    """A model name, file or checksum is wrong, or the architecture is unsupported."""
