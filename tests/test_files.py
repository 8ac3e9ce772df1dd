"""Atomic writes: the old file whole or the new one whole, never a part, and no temporary file left behind."""

import os

import numpy as np
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


def test_a_kept_npz_reads_back_and_one_that_does_not_read_is_none(tmp_path):
  path = str(tmp_path / "kept.npz")
  assert files.read_npz(path) is None  # none yet
  files.write_npz(path, labels=np.arange(5, dtype=np.int32), tag=np.asarray("abc"))
  kept = files.read_npz(path)
  np.testing.assert_array_equal(kept["labels"], np.arange(5))
  assert str(kept["tag"]) == "abc" and os.listdir(tmp_path) == ["kept.npz"]
  whole = (tmp_path / "kept.npz").read_bytes()
  for damaged in (whole[: len(whole) // 2], b"", b"not a zip file"):  # torn by a crash, emptied, overwritten
    (tmp_path / "kept.npz").write_bytes(damaged)
    assert files.read_npz(path) is None
