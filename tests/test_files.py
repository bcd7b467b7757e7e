"""models/files.py: atomic files, sets of files and folders, with the umask's modes and no leftovers."""

from __future__ import annotations

import os
import signal
import stat

import pytest
import torch

from models import files
from models.files import atomic_files, atomic_folder, atomic_path, exit_on_sigterm


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "file_mode", "folder_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700),
                                                                (0o002, 0o664, 0o775)])  # fmt: skip
def test_new_files_and_folders_take_the_umask(tmp_path, umask, mask, file_mode, folder_mode):
    umask(mask)
    with atomic_path(tmp_path / "a.txt") as tmp:
        tmp.write_text("a")
    with atomic_files({"b": tmp_path / "b.txt", "c": tmp_path / "c.json"}) as tmp:
        tmp["b"].write_text("b")
        tmp["c"].write_text("c")
    with atomic_folder(tmp_path / "bundle") as folder:
        (folder / "x").write_text("x")
    assert [mode(tmp_path / n) for n in ("a.txt", "b.txt", "c.json", "bundle/x")] == [file_mode] * 4
    assert mode(tmp_path / "bundle") == folder_mode


def test_a_failure_inside_leaves_old_files_and_no_temporary(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).write_text("old")
    with pytest.raises(RuntimeError), atomic_files({"a": tmp_path / "a", "b": tmp_path / "b"}) as tmp:
        tmp["a"].write_text("new")
        raise RuntimeError("the second file could not be made")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
    assert (tmp_path / "a").read_text() == (tmp_path / "b").read_text() == "old"


def test_a_failed_rename_puts_every_old_file_back(tmp_path, monkeypatch):
    for name in ("a", "b"):
        (tmp_path / name).write_text("old")
    real, calls = os.replace, []

    def flaky(src, dst):  # set aside a, b; move in a; fail on b
        calls.append(dst)
        if len(calls) == 4:
            raise OSError("disk full")
        real(src, dst)

    monkeypatch.setattr(files.os, "replace", flaky)
    paths = {name: tmp_path / name for name in ("a", "b", "c")}
    with pytest.raises(OSError, match="disk full"), atomic_files(paths) as tmp:
        for path in tmp.values():
            path.write_text("new")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # c, new, is not left alone either
    assert (tmp_path / "a").read_text() == (tmp_path / "b").read_text() == "old"


def test_folder_is_swapped_whole_or_left_as_it_was(tmp_path):
    target = tmp_path / "bundle"
    with atomic_folder(target) as folder:
        (folder / "old").write_text("1")
    with pytest.raises(RuntimeError), atomic_folder(target) as folder:
        (folder / "new").write_text("2")
        raise RuntimeError
    assert [p.name for p in target.iterdir()] == ["old"]
    with atomic_folder(target) as folder:
        (folder / "new").write_text("2")
    assert [p.name for p in target.iterdir()] == ["new"]  # the old contents are gone, not merged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"), atomic_folder(tmp_path / "file"):
        pass


def test_sigterm_unwinds_so_temporaries_are_removed(tmp_path):
    with pytest.raises(SystemExit) as exit_info, exit_on_sigterm(), atomic_path(tmp_path / "a") as tmp:
        tmp.write_text("partial")
        os.kill(os.getpid(), signal.SIGTERM)
    assert exit_info.value.code == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the previous handler is back


def test_a_writer_that_replaces_the_temporary_still_gets_the_umask_mode(tmp_path, umask):
    from safetensors.torch import save_file

    with atomic_files({"w": tmp_path / "w.safetensors"}) as tmp:
        save_file({"x": torch.zeros(2)}, str(tmp["w"]))  # writes its own file, mode 0o600
    assert stat.S_IMODE((tmp_path / "w.safetensors").stat().st_mode) == 0o644
