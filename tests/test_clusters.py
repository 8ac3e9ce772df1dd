"""k-means pseudo-labels for self-conditioning: recovered clusters, determinism, shares, the workdir cache."""

import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import REPO

from ganjax import saved_run
from ganjax.conditioning import Conditioning
from ganjax.data import clusters


def blobs(seed: int = 0):
  """90 uint8 'images' in three well-separated groups (dark, mid, bright), shuffled; and their group."""
  rng = np.random.default_rng(seed)
  groups = rng.permutation(np.repeat(np.arange(3), 30))
  images = np.clip(groups[:, None] * 100 + 20 + rng.normal(0, 5, (90, 28 * 28)), 0, 255).astype(np.uint8)
  return images.reshape(90, 28, 28, 1), groups


def test_kmeans_recovers_well_separated_groups_and_is_a_function_of_the_key():
  images, groups = blobs()
  assignments = clusters.kmeans(images, 3, jax.random.key(0))
  assert assignments.dtype == np.int32 and assignments.shape == (90,)
  assert clusters.purity(assignments, groups) == 1.0
  assert len(np.unique(assignments)) == 3  # one cluster per group, not two groups in one
  np.testing.assert_array_equal(assignments, clusters.kmeans(images, 3, jax.random.key(0)))


def test_shares_and_purity():
  assignments = np.array([0, 0, 1, 1, 1, 3], np.int32)
  np.testing.assert_allclose(clusters.shares(assignments, 4), [2 / 6, 3 / 6, 0, 1 / 6])
  labels = np.array([5, 5, 2, 2, 7, 1])
  assert clusters.purity(assignments, labels) == pytest.approx(5 / 6)


def test_kmeans_rejects_a_cluster_count_it_cannot_make():
  images, _ = blobs()
  with pytest.raises(ValueError, match=r"num_clusters=1; it must be in \[2, 90\]"):
    clusters.kmeans(images, 1, jax.random.key(0))


def test_load_or_compute_keeps_the_clusters_in_the_workdir_and_reuses_them(tmp_path):
  images, groups = blobs()
  first = clusters.load_or_compute(str(tmp_path), images, 3, jax.random.key(0))
  path = tmp_path / saved_run.CLUSTERS_FILE
  assert path.exists() and not any(name.endswith(".tmp.npz") for name in os.listdir(tmp_path))
  kept = (first + 1) % 3  # a resumed run reads the file, whatever k-means would give now
  with np.load(path) as f:
    np.savez(path, **{**{name: f[name] for name in f.files}, "assignments": kept})
  np.testing.assert_array_equal(clusters.load_or_compute(str(tmp_path), images, 3, jax.random.key(0)), kept)
  # A file that was made for other images (another dataset size), another number of clusters or another key
  # (seed) is recomputed, not trusted.
  again = clusters.load_or_compute(str(tmp_path), images[:60], 3, jax.random.key(0))
  assert again.shape == (60,) and clusters.purity(again, groups[:60]) == 1.0
  np.savez(path, assignments=kept, num_clusters=3, key_data=np.asarray(jax.random.key_data(jax.random.key(0))))
  two = clusters.load_or_compute(str(tmp_path), images, 2, jax.random.key(0))  # kept's values are all < 3
  assert set(np.unique(two)) == {0, 1}
  with np.load(path) as f:
    assert int(f["num_clusters"]) == 2
  np.savez(path, assignments=kept, num_clusters=3, key_data=np.asarray(jax.random.key_data(jax.random.key(0))))
  other_key = clusters.load_or_compute(str(tmp_path), images, 3, jax.random.key(1))
  assert clusters.purity(other_key, groups) == 1.0
  with np.load(path) as f:  # recomputed for, and kept with, the new key
    np.testing.assert_array_equal(f["key_data"], jax.random.key_data(jax.random.key(1)))
  whole = path.read_bytes()
  path.write_bytes(whole[: len(whole) // 2])  # torn: clustered afresh and replaced, not an error
  torn = clusters.load_or_compute(str(tmp_path), images, 3, jax.random.key(1))
  np.testing.assert_array_equal(torn, other_key)
  with np.load(path) as f:  # the file whole again
    np.testing.assert_array_equal(f["assignments"], other_key)


@pytest.mark.slow
def test_within_classes_clusters_each_label_apart_and_is_kept_apart_from_plain_clusters(tmp_path):
  images, groups = blobs()
  labels = np.arange(90) % 2  # two 'digits', each holding all three groups
  assignments = clusters.within_classes(images, labels, 3, jax.random.key(0))
  np.testing.assert_array_equal(assignments // 3, labels)  # pair id = label * 3 + cluster
  for label in (0, 1):  # within a label the three groups are found again
    members = labels == label
    assert clusters.purity(assignments[members], groups[members]) == 1.0
    assert len(np.unique(assignments[members])) == 3
  kept = clusters.load_or_compute(str(tmp_path), images, 3, jax.random.key(0), labels=labels)
  np.testing.assert_array_equal(kept, assignments)
  plain = clusters.load_or_compute(str(tmp_path), images, 3, jax.random.key(0))  # not the per-label file
  assert set(np.unique(plain)) == {0, 1, 2}
  again = clusters.load_or_compute(str(tmp_path), images, 3, jax.random.key(0), labels=labels)
  np.testing.assert_array_equal(again, assignments)


@pytest.mark.slow
def test_training_labels_are_the_digits_or_the_kept_clusters_with_their_shares(tmp_path):
  images, groups = blobs()
  digits, key = groups.astype(np.int32), jax.random.key(0)
  labels, shares = clusters.training_labels(Conditioning("digit"), str(tmp_path), images, digits, key, True)
  assert labels is digits and shares is None and not os.listdir(tmp_path)
  labels, shares = clusters.training_labels(Conditioning("clusters", 3), str(tmp_path), images, digits, key, True)
  assert os.listdir(tmp_path) == [saved_run.CLUSTERS_FILE]
  np.testing.assert_allclose(shares, clusters.shares(labels, 3))
  other = str(tmp_path / "w")
  within, _ = clusters.training_labels(Conditioning("digit_clusters", 2), other, images, digits, key, False)
  np.testing.assert_array_equal(within // 2, digits)  # digit * K + the cluster within the digit
  assert not (tmp_path / "w").exists()  # write=False: another process's view, nothing written


def test_conditioning_is_pure_and_the_workdir_files_are_named_by_saved_run_alone():
  code = "import sys, ganjax.conditioning; print(sorted(m for m in sys.modules if m.startswith('ganjax')))"
  loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
  assert "ganjax.data.clusters" not in loaded and "ganjax.saved_run" not in loaded
  assert not hasattr(clusters, "CLUSTERS_FILE")
