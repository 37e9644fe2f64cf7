"""A progress line on a terminal; silent when piped or asked to be quiet."""

from __future__ import annotations

import sys
import time


class ProgressLine:
    """Callable as ``progress(done, total)``; draws ``label: 42% (done/total) 3.1 s`` on stderr."""

    def __init__(self, label: str, quiet: bool = False, stream=None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = not quiet and self.stream.isatty()
        self.start = time.perf_counter()
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        pct = 100.0 * done / total if total else 100.0
        self.stream.write(f"\r{self.label}: {pct:5.1f}% ({done:,}/{total:,}) {time.perf_counter() - self.start:6.1f} s")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False
