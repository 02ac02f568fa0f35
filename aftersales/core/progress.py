"""A one-line progress bar for long commands (demo data, imports, benchmarks); no dependency.

    with Progress(20000, "客户", sys.stderr) as p:
        for batch in batches:
            ...
            p.advance(len(batch))

On a terminal it redraws one line with ``\\r`` (``客户 ████████░░ 12000/20000 60% 1.2s``);
when it finishes it leaves a plain line (``客户 20000/20000 100% 3.4s``). On anything that
is not a terminal (a log file, a test's StringIO) only the plain final line is written.
"""

from __future__ import annotations

import sys
import time
import unicodedata


def text_width(s: str) -> int:
    """Columns ``s`` takes on a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def _plain(s: str) -> str:
    return s


def _write(stream, s: str) -> None:
    # Django's OutputWrapper appends a newline and colours stderr unless told otherwise.
    if hasattr(stream, "style_func") and hasattr(stream, "ending"):
        stream.write(s, style_func=_plain, ending="")
    else:
        stream.write(s)
    flush = getattr(stream, "flush", None)
    if flush is not None:
        flush()


class Progress:
    def __init__(self, total: int, label: str, stream=None, *, width: int = 20, interval: float = 0.1,
                 live: bool | None = None):
        self.total = max(int(total), 0)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.interval = interval
        self.done = 0
        self.started = time.perf_counter()
        self.finished = False
        self._last_draw = 0.0
        self._last_len = 0
        if live is None:
            isatty = getattr(self.stream, "isatty", None)
            try:
                live = bool(isatty and isatty())
            except (ValueError, OSError):  # closed or odd streams
                live = False
        self.live = live

    # -------------------------------------------------------------- counting

    def advance(self, n: int = 1) -> None:
        self.update(self.done + n)

    def update(self, done: int) -> None:
        self.done = min(max(int(done), 0), self.total) if self.total else int(done)
        if not self.live:
            return
        now = time.perf_counter()
        if now - self._last_draw >= self.interval or self.done >= self.total:
            self._last_draw = now
            self._draw()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def _percent(self) -> int:
        return 100 if not self.total else int(self.done * 100 / self.total)

    def line(self) -> str:
        filled = self.width if not self.total else int(self.width * self.done / self.total)
        bar = "█" * filled + "░" * (self.width - filled)
        return f"{self.label} {bar} {self.done}/{self.total} {self._percent()}% {self.elapsed:.1f}s"

    def final_line(self) -> str:
        return f"{self.label} {self.done}/{self.total} {self._percent()}% {self.elapsed:.1f}s"

    def _draw(self) -> None:
        s = self.line()
        w = text_width(s)
        pad = " " * max(self._last_len - w, 0)
        self._last_len = w
        _write(self.stream, "\r" + s + pad)

    def finish(self) -> float:
        """Write the plain final line once; returns the elapsed seconds."""
        if self.finished:
            return self.elapsed
        self.finished = True
        s = self.final_line()
        if self.live:
            pad = " " * max(self._last_len - text_width(s), 0)
            _write(self.stream, "\r" + s + pad + "\n")
        else:
            _write(self.stream, s + "\n")
        return self.elapsed

    def __enter__(self) -> Progress:
        if self.live:
            self._draw()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
        elif self.live:
            _write(self.stream, "\n")
