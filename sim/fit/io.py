"""Reading inputs line by line: gzip by its magic bytes, binary refused, bad lines counted.

Nothing here holds a whole file: `lines()` yields (line number, text) from a plain or gzip file,
`json_items()` yields the elements of one array inside a (possibly large) JSON document by
incremental decoding, and `Tally` keeps the count of malformed lines and the first few of them
with their numbers, so a reader can skip a bad line and still say where it was.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sim.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
SHOW_BAD = 5  # malformed lines quoted in the report
BAD_SHARE = 0.5  # more than this share of candidate lines malformed: the file is refused
_SNIFF = 64 * 1024


@dataclass
class Tally:
    """Malformed lines of one file: how many, and the first SHOW_BAD with line numbers."""

    file: str
    seen: int = 0  # lines a reader tried to parse as records
    bad: int = 0
    first: list[tuple[int, str]] = field(default_factory=list)

    def fail(self, line: int, why: str) -> None:
        self.bad += 1
        if len(self.first) < SHOW_BAD:
            self.first.append((line, why))

    def check(self, expected: str) -> None:
        """Refuse the file when nothing, or mostly garbage, was read."""
        good = self.seen - self.bad
        if good <= 0:
            where = (
                f"; first problem at line {self.first[0][0]}: {self.first[0][1]}"
                if self.first
                else ""
            )
            raise InputError(f"no {expected} found{where}", file=self.file)
        if self.bad > BAD_SHARE * self.seen:
            line, why = self.first[0]
            raise InputError(
                f"{self.bad} of {self.seen} lines are malformed (expected {expected}); "
                f"line {line}: {why}",
                file=self.file,
            )

    def summary(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "records": self.seen - self.bad,
            "malformed": self.bad,
            "first_malformed": [{"line": n, "problem": w} for n, w in self.first],
        }


def _open_binary(path: Path) -> IO[bytes]:
    if not path.is_file():
        raise InputError("file not found", file=str(path))
    raw = path.open("rb")
    head = raw.read(2)
    raw.seek(0)
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    return raw


def sniff(path: Path) -> str:
    """The first ~64 KB as text (gunzipped); refuses empty, truncated-gzip and binary files."""
    with _open_binary(path) as fh:
        try:
            data = fh.read(_SNIFF)
        except (EOFError, OSError, zlib.error) as exc:
            raise InputError(f"cannot read the gzip stream: {exc}", file=str(path)) from exc
    if not data.strip():
        raise InputError("the file is empty", file=str(path))
    if b"\x00" in data:
        raise InputError(
            "binary data (NUL bytes): expected a text log, JSON or CSV", file=str(path)
        )
    text = data.decode("utf-8", errors="replace")
    if text.count("\ufffd") > max(8, len(text) // 100):
        raise InputError("not UTF-8 text: expected a text log, JSON or CSV", file=str(path))
    return text


def text_stream(path: Path) -> IO[str]:
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8", errors="replace", newline="")


def lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its newline), streamed; a cut gzip is an InputError."""
    n = 0
    with text_stream(path) as fh:
        try:
            for n, line in enumerate(fh, 1):
                yield n, line.rstrip("\r\n")
        except (EOFError, OSError, zlib.error) as exc:
            raise InputError(
                f"the gzip stream ends early or is corrupt after line {n}: {exc}", file=str(path)
            ) from exc


def json_items(path: Path, key: str, chunk: int = 1 << 20) -> Iterator[tuple[int, Any]]:
    """The elements of the array under `key` (the first such key) of a JSON document, one at a
    time, as (1-based index, value); the document is never held whole."""
    dec = json.JSONDecoder()
    with text_stream(path) as fh:
        buf, eof = "", False

        def more() -> bool:
            nonlocal buf, eof
            try:
                got = fh.read(chunk)
            except (EOFError, OSError, zlib.error) as exc:
                raise InputError(f"the gzip stream ends early: {exc}", file=str(path)) from exc
            eof = not got
            buf += got
            return bool(got)

        marker = f'"{key}"'
        while (at := buf.find(marker)) < 0:
            if not more():
                raise InputError(f"no {marker} array in this JSON document", file=str(path))
        buf = buf[at + len(marker) :]
        while True:
            s = buf.lstrip()
            if s.startswith(":"):
                s = s[1:].lstrip()
            if s.startswith("["):
                buf = s[1:]
                break
            if len(s) > 0 or not more():
                raise InputError(f"{marker} is not followed by an array", file=str(path))
        i = 0
        while True:
            s = buf.lstrip().lstrip(",").lstrip()
            if not s:
                buf = ""
                if not more():
                    raise InputError(f"{marker} array is not closed (truncated?)", file=str(path))
                continue
            if s.startswith("]"):
                return
            try:
                value, end = dec.raw_decode(s)
            except json.JSONDecodeError as exc:
                if eof:
                    raise InputError(
                        f"{marker} item {i + 1}: truncated or invalid JSON ({exc.msg})",
                        file=str(path),
                    ) from exc
                buf = s
                more()
                continue
            if end == len(s) and not eof:  # a value cut at the chunk's end may decode short
                buf = s
                more()
                continue
            i += 1
            yield i, value
            buf = s[end:]
