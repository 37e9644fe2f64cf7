"""Output paths: checked before any work (one line, exit 2), written with the umask's mode, figures in the
format their extension names, and a write that fails anyway is one line too."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.scripts import output
from deepopt_mip.scripts.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MISSING_NETWORK = ["--network", "no-such-network"]
"""Would fail while loading: an error about the output path instead shows the path was checked first."""


@pytest.fixture
def place(tmp_path):
    """A folder holding a regular file ``afile`` and an empty folder ``adir``."""
    (tmp_path / "afile").write_text("keep me\n")
    (tmp_path / "adir").mkdir()
    return tmp_path


def bad_file_paths(place):
    """Paths a file option must refuse: a folder, and a path below a regular file (its parent cannot be made)."""
    return {"a folder": place / "adir", "below a file": place / "afile" / "x.out",
            "deeper below a file": place / "afile" / "sub" / "x.out"}


def bad_dir_paths(place):
    """Paths a folder option must refuse: a regular file, and a path below one."""
    return {"a file": place / "afile", "below a file": place / "afile" / "sub"}


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


def commands_with_a_file_option(path, good):
    """(argv, option) for every file output option of every command; other outputs go to ``good`` paths."""
    return [
        (["evaluate", *MISSING_NETWORK, "--json", path, "--csv", good / "r.csv"], "--json"),
        (["evaluate", *MISSING_NETWORK, "--csv", path, "--json", good / "r.json"], "--csv"),
        (["allocate", *MISSING_NETWORK, "--json", path, "--out", good / "out"], "--json"),
        (["compare", *MISSING_NETWORK, "--json", path], "--json"),
        (["validate", "--reference", good / "no-such-reference", "--json", path], "--json"),
        (["networks", "--convert", "no-such-model.onnx", "--to", path], "--to"),
    ]


def commands_with_a_dir_option(path, good):
    return [
        (["evaluate", *MISSING_NETWORK, "--scalesim", path, "--json", good / "r.json"], "--scalesim"),
        (["allocate", *MISSING_NETWORK, "--out", path, "--json", good / "r.json"], "--out"),
        (["allocate", *MISSING_NETWORK, "--scalesim", path, "--json", good / "r.json"], "--scalesim"),
        (["pareto", *MISSING_NETWORK, "--out", path], "--out"),
        (["pareto", *MISSING_NETWORK, "--fusion", "--out", path], "--out"),
        (["allocate", *MISSING_NETWORK, "--fusion", "--out", path], "--out"),
        (["reproduce", "--out", path], "--out"),
    ]


def refused_before_work(argv, option, place, capsys):
    before = snapshot(place)
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"deepopt-mip: error: {option} ")  # the output path, not the missing network
    assert snapshot(place) == before  # nothing written, not even a folder or a temporary file


@pytest.mark.parametrize("kind", ["a folder", "below a file", "deeper below a file"])
def test_every_file_option_refuses_a_bad_path_before_any_work(place, kind, capsys):
    path = bad_file_paths(place)[kind]
    for argv, option in commands_with_a_file_option(path, place / "good"):
        refused_before_work(argv, option, place, capsys)


@pytest.mark.parametrize("kind", ["a file", "below a file"])
def test_every_folder_option_refuses_a_bad_path_before_any_work(place, kind, capsys):
    path = bad_dir_paths(place)[kind]
    for argv, option in commands_with_a_dir_option(path, place / "good"):
        refused_before_work(argv, option, place, capsys)


@pytest.mark.parametrize("kind", ["a folder", "below a file"])
def test_plot_refuses_a_bad_path_before_any_work(place, kind, capsys):
    path = bad_file_paths(place)[kind].with_suffix(".png")
    if kind == "a folder":
        path = place / "adir.png"
        path.mkdir()
    refused_before_work(["evaluate", *MISSING_NETWORK, "--plot", path], "--plot", place, capsys)


@pytest.mark.parametrize("name", ["plot.jpg", "plot", "plot.png.bak", "plot.eps"])
def test_plot_refuses_a_format_it_does_not_write(place, name, capsys):
    refused_before_work(["evaluate", *MISSING_NETWORK, "--plot", place / name], "--plot", place, capsys)


def test_a_refused_output_leaves_the_other_outputs_unwritten(place, capsys):
    """allocate with a good --json and a bad --out: no solve, so no JSON either (and it ends at once)."""
    good = place / "solution.json"
    assert main(["allocate", "--network", "alexnet", "--json", str(good), "--out", str(place / "afile")]) == 2
    assert "--out" in capsys.readouterr().err and not good.exists()


def test_two_options_naming_one_file_are_refused(place, capsys):
    same = place / "r.out"
    refused_before_work(["evaluate", *MISSING_NETWORK, "--json", same, "--csv", same], "--csv", place, capsys)
    refused_before_work(["evaluate", *MISSING_NETWORK, "--csv", place / "x.png", "--plot", place / "x.png"], "--plot",
                        place, capsys)


def test_good_paths_pass_the_checks_and_create_nothing(tmp_path):
    output.check_output_file(tmp_path / "new" / "deeper" / "r.json", "--json")
    output.check_output_file(tmp_path / "existing.json", "--json")
    (tmp_path / "existing.json").write_text("{}")
    output.check_output_file(tmp_path / "existing.json", "--json")  # an existing file is replaced
    output.check_output_dir(tmp_path / "new" / "out", "--out")
    output.check_output_dir(tmp_path, "--out")
    assert [p.name for p in tmp_path.iterdir()] == ["existing.json"]


def test_the_check_accepts_a_relative_path_in_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    output.check_output_file("r.json", "--json")
    output.check_output_dir("out", "--out")
    with pytest.raises(InputError, match="not a file name"):
        output.check_output_file("", "--json")


def test_a_failed_write_is_one_error_and_leaves_no_temporary_file(place):
    """A write below a regular file fails in the writer itself: OutputError names the file."""
    with pytest.raises(output.OutputError, match=r"cannot write .*afile/x\.json: .*afile is not a folder"):
        output.write_json(place / "afile" / "x.json", {"a": 1})
    (place / "adir" / "r.json").mkdir()  # the target became a folder after the check
    with pytest.raises(output.OutputError, match="cannot write .*r.json"):
        output.write_json(place / "adir" / "r.json", {"a": 1})
    assert [p.name for p in (place / "adir").iterdir()] == ["r.json"]  # the temporary file is gone


def test_a_write_error_outside_the_writers_is_one_line_and_status_2(tmp_path, monkeypatch, capsys):
    """main() turns an OSError no check foresaw (here a full disk while converting a network) into one line."""
    import deepopt_mip.formulation.networks as networks

    def disk_full(network, path, comments=()):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(networks, "write_network_csv", disk_full)
    target = tmp_path / "alexnet.csv"
    assert main(["networks", "--convert", "alexnet", "--to", str(target)]) == 2
    err = capsys.readouterr().err
    assert err == f"deepopt-mip: error: cannot write {target}: {os.strerror(errno.ENOSPC)}\n"


def test_networks_convert_to_a_folder_is_refused_before_the_import(tmp_path, capsys):
    """An ONNX file that does not exist: the --to folder is reported, so the import never ran."""
    assert main(["networks", "--convert", str(tmp_path / "missing.onnx"), "--to", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"deepopt-mip: error: --to {tmp_path}: is a folder, not a file\n"


# ---- permissions --------------------------------------------------------------------------------------


@pytest.fixture
def umask():
    """Set the process umask for one test, restore it after."""
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664), (0o077, 0o600)])
def test_outputs_get_the_mode_of_an_ordinary_write(tmp_path, umask, mask, expected):
    umask(mask)
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # what open() gives under this umask: the truth the writers must match
    assert mode(plain) == expected
    run = tmp_path / "run"
    assert main(["evaluate", "--network", "alexnet", "--quiet", "--json", str(run / "r.json"),
                 "--csv", str(run / "r.csv"), "--scalesim", str(run / "ss")]) == 0
    files = [p for p in run.rglob("*") if p.is_file()]
    assert len(files) == 6
    assert {p.name: mode(p) for p in files} == {p.name: expected for p in files}


def test_figures_get_the_mode_of_an_ordinary_write(tmp_path, umask):
    plt = pytest.importorskip("matplotlib.pyplot")
    umask(0o027)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    try:
        for name in ("f.png", "f.pdf", "f.svg"):
            output.save_figure(fig, tmp_path / name)
            assert mode(tmp_path / name) == 0o640
    finally:
        plt.close(fig)


# ---- figure formats -----------------------------------------------------------------------------------


MAGIC = {"png": PNG_SIGNATURE, "pdf": b"%PDF-"}


@pytest.mark.parametrize("fmt", ["png", "pdf", "svg"])
def test_plot_writes_the_format_its_extension_names_and_the_same_bytes_twice(tmp_path, fmt):
    pytest.importorskip("matplotlib")
    first, second = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt.upper()}"
    for path in (first, second):
        assert main(["evaluate", "--network", "alexnet", "--metric", "energy", "--quiet", "--plot", str(path)]) == 0
    data = first.read_bytes()
    if fmt == "svg":
        assert data.startswith(b"<?xml") and b"<svg" in data[:1000]
    else:
        assert data.startswith(MAGIC[fmt])
    assert second.read_bytes() == data  # no dates, versions or random ids in the file
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, second.name])


def test_save_figure_refuses_an_unknown_extension(tmp_path):
    plt = pytest.importorskip("matplotlib.pyplot")
    fig = plt.figure()
    try:
        with pytest.raises(output.OutputError, match="unknown figure format .jpg"):
            output.save_figure(fig, tmp_path / "f.jpg")
    finally:
        plt.close(fig)
    assert list(tmp_path.iterdir()) == []
