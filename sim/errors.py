"""Errors a user can act on. The CLI turns these into one line each on stderr and exit status 2."""

from __future__ import annotations

from collections.abc import Sequence

# At most this many problems are listed; the rest are counted (a file with hundreds of errors is
# usually one mistake repeated).
MAX_LISTED_PROBLEMS = 25


class InputError(Exception):
    """Bad input: a scenario file, key or value that cannot be used.

    The message names the file, the key path (and line where known) and what was expected.
    Several problems found at once travel as one InputError (`InputError.many`): `str()` is one
    line per problem; `file`, `key` and `detail` are the first one's.
    """

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        self.file = file
        self.key = key
        self.detail = message
        self.problems: list[InputError] = [self]
        super().__init__(self._line())

    def _line(self) -> str:
        where = ": ".join(p for p in (self.file, self.key) if p)
        return f"{where}: {self.detail}" if where else self.detail

    @classmethod
    def many(cls, problems: Sequence[InputError]) -> InputError:
        """One error carrying every problem (each stays one line), listed up to a cap."""
        if not problems:
            raise ValueError("InputError.many needs at least one problem")
        first = problems[0]
        out = cls(first.detail, file=first.file, key=first.key)
        out.problems = list(problems)
        lines = [p._line() for p in problems[:MAX_LISTED_PROBLEMS]]
        if len(problems) > MAX_LISTED_PROBLEMS:
            lines.append(f"({len(problems) - MAX_LISTED_PROBLEMS} more problems not listed)")
        out.args = ("\n".join(lines),)
        return out

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else self._line()


class Interrupted(KeyboardInterrupt):
    """SIGTERM while sim writes output: raised (as SIGINT raises KeyboardInterrupt) so that the
    temporary files are removed on the way out. The CLI exits 143 (128 + SIGTERM)."""
