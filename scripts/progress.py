"""A progress line on a terminal; silent when piped or asked to be quiet."""

from __future__ import annotations

import sys
import time


def eta_s(elapsed_s: float, done: int, total: int) -> float:
    """Seconds left if the remaining ``total - done`` go at the rate so far: elapsed * (total - done) / done."""
    return elapsed_s * (total - done) / done


class ProgressLine:
    """Callable as ``progress(done, total)``; draws ``label: 42% (done/total points) 3.1 s, ETA 4.3 s`` on stderr.

    The ETA assumes the rest goes at the average rate so far: elapsed * (total - done) / done.
    """

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
        elapsed = time.perf_counter() - self.start
        eta = f", ETA {eta_s(elapsed, done, total):.1f} s" if 0 < done < total else ""
        self.stream.write(f"\r{self.label}: {pct:5.1f}% ({done:,}/{total:,} points) {elapsed:6.1f} s{eta}   ")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False
