"""`conpet.core.files`: the one way files and folders are written atomically."""

from __future__ import annotations

import os
import stat

import pytest

from conpet.core.files import atomic_text_file, replace_folder, write_text_atomic


def test_a_file_is_replaced_whole_with_ordinary_permissions(tmp_path):
    target = tmp_path / "sub" / "out.json"
    write_text_atomic(target, "first\n")
    write_text_atomic(target, "second\nline\n")
    assert target.read_bytes() == b"second\nline\n"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not a temporary file's private 0600
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"]


def test_a_failed_write_leaves_the_old_file_and_no_staging_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old\n", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_text_file(target) as fh:
        fh.write("half of the new")
        raise RuntimeError("disk full")
    assert target.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_folder_is_replaced_whole(tmp_path):
    folder = tmp_path / "model"
    replace_folder(folder, lambda out: (out / "a.txt").write_text("1"))
    replace_folder(folder, lambda out: (out / "b.txt").write_text("2"))
    assert sorted(p.name for p in folder.iterdir()) == ["b.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_failed_folder_write_leaves_the_old_folder_and_no_staging_folder(tmp_path):
    folder = tmp_path / "model"
    replace_folder(folder, lambda out: (out / "a.txt").write_text("1"))

    def fail(out):
        (out / "b.txt").write_text("2")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        replace_folder(folder, fail)
    assert sorted(p.name for p in folder.iterdir()) == ["a.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
