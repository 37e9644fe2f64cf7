"""validate: reads the reference's CSV with its comment lines, and --max-rel-error judges it (exit 1 above X).

The sample tests/data/reference_branches_sample.csv holds numbers of the DeepOpt reference implementation
(github.com/manasiumn37/DeepOpt) run under GNU Octave; our model equals them to rounding (docs/model.md).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from deepopt_mip.scripts.cli import main

SAMPLE = Path(__file__).parent / "data" / "reference_branches_sample.csv"


def sample_lines() -> list[str]:
    return SAMPLE.read_text().splitlines(keepends=True)


def header_and_first_data_line(lines: list[str]) -> tuple[list[str], int]:
    """The column names and the index (0-based) of the first data line, past the comment lines."""
    at = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    return lines[at].strip().split(","), at + 1


def perturbed_copy(tmp_path, column: str, factor: float, where=lambda cells, header: True) -> Path:
    """The sample, comment lines kept, with ``column`` multiplied by ``factor`` in the first data row ``where``
    holds; only that row's network is kept (the others pass, as the full sample shows), to keep the test short."""
    lines = sample_lines()
    header, first = header_and_first_data_line(lines)
    index = header.index(column)
    for n in range(first, len(lines)):
        cells = lines[n].rstrip("\n").split(",")
        if where(cells, header):
            cells[index] = repr(float(cells[index]) * factor)
            lines[n] = ",".join(cells) + "\n"
            network = cells[header.index("network")]
            break
    else:
        raise AssertionError("no row to perturb")
    kept = lines[:first] + [line for line in lines[first:] if line.split(",")[header.index("network")] == network]
    path = tmp_path / "perturbed.csv"
    path.write_text("".join(kept))
    return path


def is_batched_fc(cells, header) -> bool:
    return cells[header.index("fc_flag")] == "1" and int(cells[header.index("batch_size")]) > 1


def test_the_sample_has_comment_lines():
    assert sample_lines()[0].startswith("#")


def test_the_repository_sample_passes_at_1e_9(capsys):
    assert main(["validate", "--reference", str(SAMPLE), "--max-rel-error", "1e-9"]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().splitlines()[-1].endswith("(bound 1e-09): PASS")


def test_a_folder_holding_the_sample_as_branches_csv_works_too(tmp_path):
    shutil.copy(SAMPLE, tmp_path / "branches.csv")
    out_json = tmp_path / "v.json"
    assert main(["validate", "--reference", str(tmp_path), "--max-rel-error", "1e-9", "--json", str(out_json)]) == 0
    assert json.loads(out_json.read_text())["overall"]["cases"] > 1000


def test_one_perturbed_delay_fails_and_the_bound_is_exact(tmp_path, capsys):
    """Reference delay times (1 + 1e-6): relative error 1e-6 / (1 + 1e-6), just below 1e-6."""
    path = perturbed_copy(tmp_path, "delay_cycles", 1 + 1e-6,
                          where=lambda cells, header: cells[header.index("delay_cycles")] != "inf")
    assert main(["validate", "--reference", str(path), "--max-rel-error", "1e-9"]) == 1
    assert capsys.readouterr().out.rstrip().splitlines()[-1].endswith("FAIL")
    assert main(["validate", "--reference", str(path), "--max-rel-error", "9.99e-7"]) == 1
    assert main(["validate", "--reference", str(path), "--max-rel-error", "1e-6"]) == 0
    assert main(["validate", "--reference", str(path)]) == 0  # without the option it only reports


def test_one_perturbed_energy_fails(tmp_path):
    path = perturbed_copy(tmp_path, "energy_joule", 1.001)
    assert main(["validate", "--reference", str(path), "--max-rel-error", "1e-9"]) == 1


def test_a_batched_fc_row_is_judged_the_reference_way(tmp_path):
    """Batched FC energies differ by the reference's batch-wide MAC/RF energy (86 %) yet pass; perturbed, they fail."""
    path = perturbed_copy(tmp_path, "energy_joule", 1.001, where=is_batched_fc)
    assert main(["validate", "--reference", str(path), "--max-rel-error", "1e-9"]) == 1


def test_an_infeasibility_mismatch_fails(tmp_path):
    """A finite reference delay made infinite: no relative error, but a case infeasible on one side only."""
    path = perturbed_copy(tmp_path, "delay_cycles", float("inf"),
                          where=lambda cells, header: cells[header.index("delay_cycles")] != "inf")
    assert main(["validate", "--reference", str(path), "--max-rel-error", "1"]) == 1


def test_errors_name_the_line_in_the_file_counting_comments(tmp_path, capsys):
    lines = sample_lines()
    header, first = header_and_first_data_line(lines)
    cells = lines[first].split(",")
    cells[header.index("layer_index")] = "999"
    lines[first] = ",".join(cells)
    path = tmp_path / "bad.csv"
    path.write_text("".join(lines))
    assert main(["validate", "--reference", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"data row 1 (line {first + 1}): column 'layer_index'" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("bound", ["-1", "nan", "inf"])
def test_a_bad_bound_is_refused(bound, capsys):
    assert main(["validate", "--reference", str(SAMPLE), "--max-rel-error", bound]) == 2
    assert "--max-rel-error" in capsys.readouterr().err
