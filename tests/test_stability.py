"""ganjax.studies.stability and experiments/run_summary.py: blow-ups found where a loss leaves its usual range
(and only there), where they end or that they never do, and the summary's blow-up count and table."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO

from ganjax import saved_run
from ganjax.studies import stability

LOG_EVERY = 50


def records(values, metric="critic_loss") -> list[dict]:
  """metrics.jsonl-like training records, one per LOG_EVERY steps (234 steps per epoch)."""
  steps = [LOG_EVERY * (i + 1) for i in range(len(values))]
  return [{"step": s, "epoch": s / 234, metric: float(v)} for s, v in zip(steps, values)]


def wandering(n: int, seed: int = 0) -> np.ndarray:
  """A critic loss as the recipes log it: a slow drift plus noise of 0.05."""
  rng = np.random.default_rng(seed)
  return -1.0 + 0.3 * np.sin(np.arange(n) / 15) + 0.05 * rng.standard_normal(n)


def test_a_wandering_loss_has_no_blow_ups():
  for seed in range(5):
    assert stability.blow_ups(records(wandering(200, seed)), "critic_loss") == []


def test_a_spike_that_recovers_is_found_with_its_start_peak_and_end():
  values = wandering(120)
  values[50:53] += [20.0, 50.0, 8.0]  # critic loss ~50 for three records, as the tuned recipe's blow-ups
  (event,) = stability.blow_ups(records(values), "critic_loss")
  assert (event.start_step, event.peak_step, event.end_step) == (51 * LOG_EVERY, 52 * LOG_EVERY, 54 * LOG_EVERY)
  assert event.peak_value == pytest.approx(values[51])
  assert event.usual_value == pytest.approx(-1.0, abs=0.4) and event.size > 10
  assert event.start_epoch == pytest.approx(51 * LOG_EVERY / 234)


def test_two_spikes_are_two_blow_ups_and_one_that_stays_is_not_recovered():
  values = wandering(150)
  values[40] -= 15.0  # a Wasserstein-estimate-like dip counts too: the distance is absolute
  values[90:] += 30.0  # never comes back
  events = stability.blow_ups(records(values), "critic_loss")
  assert [e.start_step for e in events] == [41 * LOG_EVERY, 91 * LOG_EVERY]
  assert events[0].end_step == 42 * LOG_EVERY and events[1].end_step is None


def test_records_without_the_metric_are_skipped_and_too_short_a_run_judges_nothing():
  values = wandering(60)
  values[30] += 40.0
  mixed = records(values)
  mixed.insert(20, {"step": 1025, "epoch": 4.38, "eval_fid": 12.0})  # an evaluation record
  assert [e.start_step for e in stability.blow_ups(mixed, "critic_loss")] == [31 * LOG_EVERY]
  assert stability.blow_ups(records(values[:10]), "critic_loss") == []  # the history is not full yet
  assert stability.blow_ups(mixed, "gradient_penalty") == []
  with pytest.raises(ValueError, match="recovered"):
    stability.blow_ups(mixed, "critic_loss", threshold=2.0, recovered=3.0)


def test_markdown_lists_every_event_in_order():
  values = wandering(150)
  values[40] += 20.0
  values[100:] += 30.0
  table = stability.markdown(stability.blow_ups(records(values), "critic_loss"))
  lines = table.splitlines()
  assert len(lines) == 4 and lines[2].startswith("| critic_loss | 2050 (8.76) | 2050 |")
  assert lines[3].endswith("| not recovered |")


@pytest.mark.slow
def test_run_summary_counts_and_lists_the_blow_ups_of_a_workdir(tiny_config, tmp_path):
  workdir = tmp_path / "run"
  os.makedirs(workdir)
  saved_run.write_config(str(workdir), tiny_config)
  values = wandering(80)
  values[60] += 50.0
  lines = [r | {"generator_loss": 0.5, "images_per_sec": 100.0} for r in records(values)]
  with open(workdir / "metrics.jsonl", "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in lines)
  script = os.path.join(REPO, "experiments", "run_summary.py")
  out = subprocess.run([sys.executable, script, "--blow_ups", str(workdir)], capture_output=True, text=True)
  assert out.returncode == 0, out.stderr
  header, _, row = out.stdout.splitlines()[:3]
  assert header.split("|")[-2].strip() == "critic_loss blow-ups" and row.split("|")[-2].strip() == "1"
  assert f"| critic_loss | {61 * LOG_EVERY} (" in out.stdout
  missing = subprocess.run([sys.executable, script, str(tmp_path / "nowhere")], capture_output=True, text=True)
  assert missing.returncode != 0 and "is not a directory" in missing.stderr
