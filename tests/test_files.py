"""Atomic writes: the old file whole or the new one whole, never a part, and no temporary file left behind."""

import os

import pytest

from ganjax import files


def test_atomic_write_replaces_text_and_bytes(tmp_path):
  path = str(tmp_path / "a.json")
  files.atomic_write(path, "old")
  files.atomic_write(path, b"new")
  assert open(path, "rb").read() == b"new" and os.listdir(tmp_path) == ["a.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
  path = str(tmp_path / "grid.png")
  files.atomic_write(path, "old")
  with pytest.raises(RuntimeError), files.atomic_path(path) as tmp:
    assert tmp.endswith(".tmp.png")  # the suffix kept: writers that pick a format by suffix still can
    open(tmp, "w").write("half")
    raise RuntimeError("crash while writing")
  assert open(path).read() == "old" and os.listdir(tmp_path) == ["grid.png"]
