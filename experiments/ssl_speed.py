"""The semi-supervised GAN's reference recipe in iterations per second: ganjax side by side with the PyTorch peer.

  python experiments/ssl_speed.py --rounds=3 --iterations=300 --out=experiments/results/ssl_gan/speed.jsonl

Rounds alternate the two trainers on the same machine: ganjax's jitted train_step of configs/ssl_gan.py (batches
assembled as a run assembles them, in the timed loop) and ../shared/peers/torch_ssl_gan.py (its own venv, a
subprocess), each timing --iterations after --warmup. One JSON line per window (with the load average at its
start), then the median rate of each and their ratio. Run it on an otherwise idle machine.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax

from configs import ssl_gan
from ganjax.data import mnist
from ganjax.ssl import data, steps
from ganjax.studies import cells

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Windows per trainer, alternating.")
_ITERATIONS = flags.DEFINE_integer("iterations", 300, "Timed iterations per window.")
_WARMUP = flags.DEFINE_integer("warmup", 20, "Untimed iterations before each window (ganjax: compilation).")
_THREADS = flags.DEFINE_integer("threads", os.cpu_count() or 1, "The peer's intra-op threads (ganjax uses all).")
_PEERS = flags.DEFINE_string("peers_dir", os.path.join(ROOT, "..", "shared", "peers"), "Where torch_ssl_gan.py is.")
_TORCH_PYTHON = flags.DEFINE_string("torch_python", "/tmp/venv-torch/bin/python", "The peer's venv Python.")
_OUT = flags.DEFINE_string("out", "", "Append the JSON lines here too.")


def ganjax_window(iterations: int, warmup: int) -> dict:
  """A fresh reference state trained for warmup + iterations; the rate over the last `iterations`."""
  config = ssl_gan.get_config()
  setup = steps.make_setup(config)
  images, labels = mnist.load_split(config, "train")
  batches = data.few_labels_batches(images, labels, config.labels_per_class, config.label_seed, jax.random.key(0))
  state = steps.create_state(setup, jax.random.key(1), batches.init_images())
  train_step, key = steps.make_train_step(setup), jax.random.key(2)
  for iteration in range(warmup):
    state, _ = train_step(state, batches.batch(iteration), key)
  jax.block_until_ready(state)
  start = time.perf_counter()
  for iteration in range(warmup, warmup + iterations):
    state, _ = train_step(state, batches.batch(iteration), key)
  jax.block_until_ready(state)
  seconds = time.perf_counter() - start
  return {"iters_per_s": iterations / seconds, "seconds": round(seconds, 2), "version": jax.__version__}


def peer_window(iterations: int, warmup: int) -> dict:
  """torch_ssl_gan.py --iters warmup + iterations --warmup warmup, its result line."""
  with tempfile.TemporaryDirectory() as tmp:
    json_path = os.path.join(tmp, "peer.jsonl")
    command = [
      _TORCH_PYTHON.value, "torch_ssl_gan.py", "--iters", str(warmup + iterations), "--warmup", str(warmup),
      "--threads", str(_THREADS.value), "--json", json_path,
    ]  # fmt: skip
    subprocess.run(command, cwd=_PEERS.value, check=True, capture_output=True, text=True)
    with open(json_path) as f:
      result = [json.loads(line) for line in f if line.strip()][-1]
  return {"iters_per_s": result["iters_per_s"], "seconds": result["seconds"], "version": result["torch"]}


def main(argv):
  del argv
  windows = []
  for round_index in range(_ROUNDS.value):
    for framework, window in (("ganjax", ganjax_window), ("torch", peer_window)):
      load = os.getloadavg()[0]
      record = {"framework": framework, "round": round_index, "load_avg": round(load, 2)}
      record.update(window(_ITERATIONS.value, _WARMUP.value), hardware=cells.hardware()["line"])
      print(json.dumps(record), flush=True)
      windows.append(record)
  frameworks = ("ganjax", "torch")
  medians = {f: statistics.median(w["iters_per_s"] for w in windows if w["framework"] == f) for f in frameworks}
  summary = {"record": "summary", **{f"{f}_iters_per_s": round(v, 2) for f, v in medians.items()}}
  summary["ratio"] = round(medians["ganjax"] / medians["torch"], 3)
  print(json.dumps(summary), flush=True)
  if _OUT.value:
    with open(_OUT.value, "a") as f:
      f.writelines(json.dumps(record) + "\n" for record in [*windows, summary])


if __name__ == "__main__":
  app.run(main)
