"""Every exit status the CLI returns is documented in --help and in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from deepopt_mip.scripts.cli import main

README = Path(__file__).parent.parent / "README.md"
STATUSES = {0: "success", 1: "disagree", 2: "bad input", 3: "solver", 130: "interrupted", 141: "pipe"}
"""Each status main() returns (cli.main's handlers and the compare/validate verdicts), and a word of its meaning."""


def test_help_lists_every_exit_status(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    epilog = text.split("exit status:", 1)[1]
    for status, word in STATUSES.items():
        line = next((ln for ln in epilog.splitlines() if re.match(rf"\s+{status}\s", ln)), None)
        assert line is not None and word in line.lower(), f"exit status {status} not in --help"


def test_readme_lists_every_exit_status():
    text = README.read_text()
    table = text.split("Exit status", 1)[1]
    for status, word in STATUSES.items():
        row = next((ln for ln in table.splitlines() if ln.startswith(f"| {status} |")), None)
        assert row is not None and word in row.lower(), f"exit status {status} not in the README's table"


def test_main_returns_only_documented_statuses():
    """The statuses main() can return, read off its source, are the documented ones."""
    import inspect

    from deepopt_mip.scripts import cli
    returned = {int(n) for n in re.findall(r"return (\d+)", inspect.getsource(cli.main))}
    assert returned <= set(STATUSES)
