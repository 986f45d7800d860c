"""Errors a user can act on. The CLI turns these into one line on stderr and exit status 2."""

from __future__ import annotations


class InputError(Exception):
    """Bad input: a scenario file, key or value that cannot be used.

    The message names the file, the key path (and line where known) and what was expected.
    """

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        self.file = file
        self.key = key
        self.detail = message
        where = ": ".join(p for p in (file, key) if p)
        super().__init__(f"{where}: {message}" if where else message)
