"""cli.check_output_path: a script's --out that cannot be written is one line, before any slow work."""

import os

import pytest

from ganjax import cli
from ganjax.errors import OutputPathError


def test_an_output_path_that_is_a_directory_is_named_with_what_to_give(tmp_path):
  (tmp_path / "runs").mkdir()
  out = str(tmp_path / "runs")
  with pytest.raises(OutputPathError, match=f"^--out={out} is a directory; give a file path ending in .npz$"):
    cli.check_output_path("--out", out, ".npz")
  with pytest.raises(OutputPathError, match="is a directory; give a file path$"):
    cli.check_output_path("--out", out)


@pytest.mark.parametrize("below", ["x.npz", "deeper/x.npz"])
def test_an_output_path_under_a_file_names_that_file(tmp_path, below):
  (tmp_path / "some_file.txt").write_text("not a directory")
  out = str(tmp_path / "some_file.txt" / below)
  with pytest.raises(OutputPathError, match=r"is under .*some_file\.txt, which is a file, not a directory"):
    cli.check_output_path("--out", out, ".npz")


def test_an_output_path_without_the_suffix_or_empty_is_refused(tmp_path):
  with pytest.raises(OutputPathError, match=r"--out=.*data\.json does not end in \.npz"):
    cli.check_output_path("--out", str(tmp_path / "data.json"), ".npz")
  with pytest.raises(OutputPathError, match="--out is empty; give a file path"):
    cli.check_output_path("--out", "")


def test_a_new_file_in_missing_directories_or_an_existing_file_is_accepted_and_nothing_is_made(tmp_path):
  cli.check_output_path("--out", str(tmp_path / "a" / "b" / "x.npz"), ".npz")
  (tmp_path / "old.json").write_text("{}")
  cli.check_output_path("--out", str(tmp_path / "old.json"))
  assert sorted(os.listdir(tmp_path)) == ["old.json"]  # the writer makes the directories, not the check


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_output_path_in_a_read_only_directory_is_refused(tmp_path):
  (tmp_path / "locked").mkdir(mode=0o555)
  with pytest.raises(OutputPathError, match="locked is not writable"):
    cli.check_output_path("--out", str(tmp_path / "locked" / "new" / "x.npz"), ".npz")
