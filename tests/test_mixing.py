"""Mixes of exported datasets (export.py --mix): shares, counts per digit, provenance, one-line refusals."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO

from ganjax.errors import ConfigError, DataError
from ganjax.synth import export, mixing


def fake_export(path: str, per_class: int, pixel: int, workdir: str = "/runs/fake") -> str:
  """An export whose every image is filled with `pixel` (to tell the sources apart), digits in order."""
  labels = np.repeat(np.arange(10, dtype=np.int32), per_class)
  images = np.full((len(labels), 28, 28, 1), pixel, np.uint8)
  images[:, 0, 0, 0] = np.tile(np.arange(per_class), 10)  # each image's rank within its digit
  export.write_dataset(path, images, labels, {"workdir": workdir, "checkpoint_step": pixel, "label_source": "x"})
  return path


@pytest.fixture
def two_exports(tmp_path):
  return fake_export(str(tmp_path / "a.npz"), 8, pixel=10), fake_export(str(tmp_path / "b.npz"), 5, pixel=20)


def test_parse_reads_paths_and_shares():
  assert mixing.parse("a.npz:0.7, dir/b.npz:0.3") == (mixing.Source("a.npz", 0.7), mixing.Source("dir/b.npz", 0.3))
  assert mixing.parse("c:/x.npz:1") == (mixing.Source("c:/x.npz", 1.0),)  # the share is after the last colon


@pytest.mark.parametrize(
  "spec, message",
  [
    ("a.npz", r"mix item 'a.npz': give PATH:SHARE with a share in \(0, 1\]"),
    ("a.npz:x,b.npz:0.5", r"mix item 'a.npz:x'"),
    ("a.npz:0,b.npz:1", r"mix item 'a.npz:0'"),
    ("a.npz:1.5", r"mix item 'a.npz:1.5'"),
    (":0.5,b.npz:0.5", r"mix item ':0.5'"),
    ("a.npz:0.5,b.npz:0.4", r"the shares add up to 0.9; they must add up to 1$"),
    ("a.npz:0.5,./a.npz:0.5", r"names a file twice"),
  ],
)
def test_parse_refuses_bad_specs_in_one_line(spec, message):
  with pytest.raises(ConfigError, match=message):
    mixing.parse(spec)


@pytest.mark.parametrize(
  "shares, num_per_class, counts",  # a tie of remainders goes to the earlier source
  [
    ([0.7, 0.3], 1000, [700, 300]),
    ([0.5, 0.5], 5, [3, 2]),
    ([1 / 3] * 3, 10, [4, 3, 3]),
    ([0.2, 0.8], 6, [1, 5]),
    ([0.25, 0.75], 6, [2, 4]),
  ],
)
def test_counts_per_digit_follow_the_shares_and_add_up_exactly(shares, num_per_class, counts):
  assert mixing.counts_per_digit(shares, num_per_class) == counts


def test_a_mix_takes_each_sources_share_of_every_digit_first_in_file_order(two_exports):
  a, b = two_exports
  images, labels, provenance = mixing.mix(mixing.parse(f"{a}:0.6,{b}:0.4"), num_per_class=5)
  assert images.shape == (50, 28, 28, 1) and images.dtype == np.uint8
  np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 5))
  for digit in range(10):
    of_digit = images[labels == digit]
    np.testing.assert_array_equal(of_digit[:, 1, 1, 0], [10, 10, 10, 20, 20])  # 3 from a, then 2 from b
    np.testing.assert_array_equal(of_digit[:, 0, 0, 0], [0, 1, 2, 0, 1])  # each source's first ones
  assert provenance["label_source"] == "mix" and provenance["num_images"] == 50
  assert [(s["path"], s["share"], s["per_class"]) for s in provenance["mixed_from"]] == [(a, 0.6, 3), (b, 0.4, 2)]
  assert provenance["mixed_from"][1]["provenance"]["checkpoint_step"] == 20  # each source's whole provenance


def test_a_written_mix_reads_back_as_an_export_with_its_grids(two_exports, tmp_path):
  a, b = two_exports
  out = str(tmp_path / "out" / "mixed.npz")
  written = mixing.write_mix(f"{a}:0.5,{b}:0.5", 4, out)
  images, labels, provenance = export.load_dataset(out)
  assert provenance == written and len(labels) == 40 and np.bincount(labels).tolist() == [4] * 10
  assert (images[..., 0][:, 1, 1] == 10).sum() == 20
  assert all(os.path.exists(str(tmp_path / "out" / f"mixed_digit{d}.png")) for d in range(10))


def test_a_source_with_too_few_of_a_digit_is_one_line_naming_it_and_nothing_is_written(two_exports, tmp_path):
  a, b = two_exports
  out = str(tmp_path / "mixed.npz")
  with pytest.raises(
    DataError, match=r"b\.npz holds 5 images of digit 0; the mix takes 6 \(0\.5 of num_per_class=12\)"
  ):
    mixing.write_mix(f"{a}:0.5,{b}:0.5", 12, out)
  assert not os.path.exists(out)


def test_a_torn_source_is_one_line_naming_it(two_exports, tmp_path):
  a, _ = two_exports
  torn = str(tmp_path / "torn.npz")
  with open(a, "rb") as f, open(torn, "wb") as g:
    g.write(f.read()[:200])
  with pytest.raises(DataError, match=r"torn\.npz does not read as an export of export\.py"):
    mixing.mix(mixing.parse(f"{a}:0.5,{torn}:0.5"), 2)


def run_export(*args):
  command = [sys.executable, "export.py", *args]
  return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


def test_the_cli_writes_the_mix_and_says_what_it_took_from_each_source(two_exports, tmp_path):
  a, b = two_exports
  out = str(tmp_path / "mixed.npz")
  result = run_export(f"--mix={a}:0.8,{b}:0.2", "--num_per_class=5", f"--out={out}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip() == f"wrote 50 images (5 per class: 4 from {a}, 1 from {b}) to {out}"
  assert json.loads(str(np.load(out)["provenance"]))["num_per_class"] == 5


@pytest.mark.parametrize("extra", ["--workdir=runs/x", "--seed=1", "--recognizer=cnn", "--min_confidence=0.9"])
def test_the_cli_refuses_sampling_flags_beside_mix_in_one_line(two_exports, tmp_path, extra):
  a, b = two_exports
  out = str(tmp_path / "mixed.npz")
  result = run_export(f"--mix={a}:0.5,{b}:0.5", extra, f"--out={out}")
  assert result.returncode == 1 and not os.path.exists(out)
  flag = extra.split("=")[0]
  assert result.stderr.strip().splitlines()[-1] == (
    f"error: {flag} does not apply to --mix, which takes digits already exported; leave it out"
  )


def test_the_cli_without_workdir_or_mix_says_to_give_one(tmp_path):
  result = run_export(f"--out={tmp_path / 'x.npz'}")
  assert result.returncode != 0 and "give --workdir (a training run) or --mix (exports to mix)" in result.stderr


@pytest.mark.slow
def test_evaluate_scores_a_mix_of_a_runs_two_exports_on_its_runs_data(tiny_run, tmp_path):
  first, second, out = (str(tmp_path / name) for name in ("seed0.npz", "seed1.npz", "mixed.npz"))
  export.export_dataset(tiny_run.workdir, first, export.ExportOptions(num_per_class=6, seed=0))
  export.export_dataset(tiny_run.workdir, second, export.ExportOptions(num_per_class=6, seed=1))
  mixing.write_mix(f"{first}:0.5,{second}:0.5", 10, out)
  command = [sys.executable, "evaluate.py", f"--npz={out}"]
  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  printed = json.loads(result.stdout.strip().splitlines()[-1])
  assert printed["npz"] == out and printed["label_source"] == "mix" and printed["checkpoint_step"] is None
  assert printed["num_samples"] == 100 and 0 <= printed["label_agreement"] <= 1
