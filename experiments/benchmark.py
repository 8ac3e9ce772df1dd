"""Training throughput of ganjax, side by side with the TensorFlow and PyTorch reference trainers.

  python experiments/benchmark.py                                  # ganjax: gan, wgan, wgan_gp
  python experiments/benchmark.py --frameworks=ganjax,tf,torch     # interleaved with ../shared/peers
  python experiments/benchmark.py --conv_impls=plain,phase --losses=gan --rounds=3   # compare levers

Every measurement runs in its own process (so compilation, memory and thread pools never leak between
them), and the rounds interleave every (framework, loss): load from other work on the machine spreads over
all of them, and the ratios are taken within one run rather than against a figure from another day.

Per (framework, loss): generator steps/s and real images/s at batch 256 after warm-up (median, min and max
over the rounds), first-step time (compilation / tracing) separately, achieved GFLOP/s of the model's
analytic FLOPs and its share of --peak_gflops, and peak RSS (device memory on a GPU). Results are printed
as a markdown table and appended as JSON lines to --json.
"""

import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

_FRAMEWORKS = flags.DEFINE_list("frameworks", ["ganjax"], "ganjax, tf (../shared/peers/tf_gan.py), torch.")
_LOSSES = flags.DEFINE_list(
  "losses",
  ["gan", "wgan", "wgan_gp"],
  "Config names (configs/<name>.py). The peers train only the paper's gan, wgan and wgan_gp; for the others "
  "(e.g. the tuned recipes) only ganjax is measured.",
)
_CONV_IMPLS = flags.DEFINE_list(
  "conv_impls", ["auto"], "ganjax conv implementations to measure (auto|plain|phase|hybrid)."
)
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Rounds; each runs every (framework, loss) once, in its own process.")
_STEPS = flags.DEFINE_integer("steps", 0, "Generator steps per measurement incl. warm-up (0: 45 for gan, 33 else).")
_WARMUP = flags.DEFINE_integer("warmup", 0, "Warm-up steps excluded from the timing (0: 5 for gan, 3 else).")
_BATCH = flags.DEFINE_integer("batch", 256, "Batch size.")
_PEAK = flags.DEFINE_float("peak_gflops", 532.0, "Peak fp32 GFLOP/s of the machine (2 Zen 5 cores with AVX-512).")
_PEERS = flags.DEFINE_string("peers_dir", os.path.join(ROOT, "..", "shared", "peers"), "Reference trainers.")
_TF_PYTHON = flags.DEFINE_string("tf_python", "/tmp/venv-tf/bin/python", "Python of the TensorFlow venv.")
_TORCH_PYTHON = flags.DEFINE_string("torch_python", "/tmp/venv-torch/bin/python", "Python of the PyTorch venv.")
_JSON = flags.DEFINE_string("json", "benchmark.jsonl", "Append one JSON line per measurement here.")
_WORKER = flags.DEFINE_string("worker", None, "Internal: measure this ganjax loss in this process.")
_CONV_IMPL = flags.DEFINE_string("conv_impl", "auto", "Internal: the worker's conv implementation.")

PEER_LOSS = {"gan": "gan", "wgan": "wgan", "wgan_gp": "wgan-gp"}
# The configs a training run can take as they are (configs/ less default.py and the helper modules).
CONFIG_NAMES = tuple(
  sorted(
    os.path.splitext(f)[0]
    for f in os.listdir(os.path.join(ROOT, "configs"))
    if f.endswith(".py") and f not in ("__init__.py", "default.py")
  )
)


def paper_config(loss: str, batch: int):
  """configs/<loss>.py at this batch size: the recipe every framework's measurement of `loss` follows."""
  config = importlib.import_module(f"configs.{loss}").get_config()
  config.batch_size = batch
  return config


def default_steps(loss: str) -> tuple[int, int]:
  """(steps, warm-up) per measurement: the peers' bench.sh choice, about 20-60 s per window on 2 cores."""
  steps = _STEPS.value or (45 if loss == "gan" else 33)
  warmup = _WARMUP.value or (5 if loss == "gan" else 3)
  return steps, warmup


def analytic_flops(config) -> dict[str, float]:
  """FLOPs (2 per multiply-add) of one generator step: the useful work, whatever the implementation.

  Counted as the peers count (../shared/peers/README.md), from the config's widths: a layer's backward is
  dW plus dX (same MACs as forward each; no dX into the image or the noise); transposed convs count
  in_pixels * Cin * Cout * 25. Critic step: G forward, D forward on real and fake, D backward on both;
  wgan_gp adds 4 D forwards (interpolates, their input gradient, the double backward). Generator step:
  G forward, D forward, D dX, G backward.
  """
  g0, g1, g2 = config.generator_features
  latent = config.latent_dim
  g_layers = [latent * 7 * 7 * g0, 7 * 7 * g0 * g1 * 25, 7 * 7 * g1 * g2 * 25, 14 * 14 * g2 * 1 * 25]
  d_layers, channels, size = [], 1, 28
  for features in config.critic_features:
    size //= 2
    d_layers.append(size * size * channels * features * 25)
    channels = features
  d_layers.append(size * size * channels)
  gf, df = 2 * sum(g_layers), 2 * sum(d_layers)
  d_backward = df + (df - 2 * d_layers[0])
  g_backward = gf + (gf - 2 * g_layers[0])
  critic_step = gf + 2 * df + 2 * d_backward + (4 * df if config.loss == "wgan_gp" else 0)
  generator_step = gf + 2 * df + g_backward
  per_image = config.num_critic_steps * critic_step + generator_step
  return {"per_generator_step": per_image * config.batch_size}


def peak_memory_mb(device) -> float | None:
  stats = device.memory_stats() if device.platform != "cpu" else None
  if stats and "peak_bytes_in_use" in stats:
    return stats["peak_bytes_in_use"] / 2**20
  return None


def run_worker(loss: str) -> None:
  """Time the real training step (the trainer's own set-up, compile, data gather and state donation)."""
  from ganjax import runtime

  runtime.configure_xla()
  import jax
  import numpy as np

  from ganjax import config as config_lib
  from ganjax import train
  from ganjax.data import mnist

  config = paper_config(loss, _BATCH.value)
  config.conv_impl = _CONV_IMPL.value
  num_steps, warmup = default_steps(loss)
  # Synthetic uint8 digits: throughput does not depend on pixel values, and the benchmark needs no data dir.
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (mnist.TRAIN_SIZE, 28, 28, 1), dtype=np.uint8)
  labels = rng.integers(0, 10, mnist.TRAIN_SIZE).astype(np.int32)
  with tempfile.TemporaryDirectory() as workdir:
    experiment = train.build(config, workdir, dataset=(images, labels))
    experiment.checkpoints.close()  # nothing is saved
  state, position = experiment.state, experiment.start

  start = time.perf_counter()
  timed_start = None
  for step in range(num_steps):
    state, metrics = experiment.train_step(state, experiment.batch(position), experiment.step_key)
    position = position.advance(config.num_critic_steps)
    if step == 0:
      jax.block_until_ready(metrics)
      first_step_s = time.perf_counter() - start
    if step + 1 == warmup:
      jax.block_until_ready(state)
      timed_start = time.perf_counter()
  jax.block_until_ready(state)
  seconds = time.perf_counter() - timed_start
  gen_steps_per_s = (num_steps - warmup) / seconds
  devices = experiment.devices
  device = devices.devices[0]
  print(
    json.dumps(
      {
        "gen_steps_per_s": gen_steps_per_s,
        "first_step_s": round(first_step_s, 2),
        "flops_per_step": analytic_flops(config)["per_generator_step"],
        "device_peak_mb": peak_memory_mb(device),
        "backend": jax.default_backend(),
        "device": f"{devices.num_devices} x {device.device_kind}",
        "conv_impl": config_lib.resolve_conv_impl(config.conv_impl),
        "jax": jax.__version__,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
      }
    )
  )


def measure(framework: str, loss: str, conv_impl: str, round_index: int, batch: int, cpu_devices: int = 0) -> dict:
  """One measurement in a child process; its peak RSS from wait4. cpu_devices > 0: that many (fake) CPU devices."""
  steps, warmup = default_steps(loss)
  env = dict(os.environ)
  if cpu_devices:
    other_flags = [f for f in env.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
    env["XLA_FLAGS"] = " ".join([*other_flags, f"--xla_force_host_platform_device_count={cpu_devices}"])
  if framework == "ganjax":
    command = [sys.executable, os.path.abspath(__file__), f"--worker={loss}", f"--conv_impl={conv_impl}"]
    command += [f"--steps={steps}", f"--warmup={warmup}", f"--batch={batch}"]
    cwd = ROOT
  else:
    python = {"tf": _TF_PYTHON.value, "torch": _TORCH_PYTHON.value}[framework]
    script = {"tf": "tf_gan.py", "torch": "torch_gan.py"}[framework]
    if not os.path.exists(python):
      raise app.UsageError(f"--frameworks={framework} needs {python} (see {_PEERS.value}/README.md for its venv)")
    json_path = f"/tmp/ganjax_benchmark_{os.getpid()}.jsonl"
    if os.path.exists(json_path):
      os.remove(json_path)
    command = [python, script, f"--loss={PEER_LOSS[loss]}", f"--steps={steps}", f"--warmup={warmup}"]
    command += [f"--batch={batch}", f"--seed={round_index}", f"--json={json_path}"]
    cwd = _PEERS.value
  started = time.perf_counter()
  with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=stdout, stderr=stderr, text=True)
    _, status, usage = os.wait4(process.pid, 0)  # reap it ourselves: its own peak RSS comes with it
    process.returncode = os.waitstatus_to_exitcode(status)
    stdout.seek(0), stderr.seek(0)
    stdout, stderr = stdout.read(), stderr.read()
  peak_rss_mb = usage.ru_maxrss / 1024
  if process.returncode != 0:
    raise RuntimeError(f"{framework} {loss} failed (exit {process.returncode}):\n{stderr[-3000:]}")
  result = json.loads(stdout.strip().splitlines()[-1]) if framework == "ganjax" else _peer_result(framework, json_path)
  name = framework if framework != "ganjax" or len(_CONV_IMPLS.value) == 1 else f"ganjax[{conv_impl}]"
  n_critic = paper_config(loss, batch).num_critic_steps
  result.update(
    framework=name,
    loss=loss,
    round=round_index,
    batch=batch,
    timed_steps=steps - warmup,
    real_images_per_s=result["gen_steps_per_s"] * n_critic * batch,
    gflops_per_s=result["gen_steps_per_s"] * result["flops_per_step"] / 1e9,
    peak_rss_mb=peak_rss_mb,
    wall_s=round(time.perf_counter() - started, 1),
    load_avg=os.getloadavg()[0],
  )
  return result


def _peer_result(framework: str, json_path: str) -> dict:
  """A peer trainer's last JSON line in ganjax's result fields."""
  with open(json_path) as f:
    peer = json.loads(f.read().strip().splitlines()[-1])
  os.remove(json_path)
  return {
    "gen_steps_per_s": peer["gen_steps_per_s"],
    "first_step_s": peer.get("first_step_s"),
    "backend": "cpu",
    "device": framework,
    "version": peer.get("tf") or peer.get("torch"),
    "flops_per_step": peer["gflops_per_s"] * 1e9 / peer["gen_steps_per_s"],
  }


def summarise(results: list[dict]) -> list[dict]:
  rows = []
  keys = sorted({(r["loss"], r["framework"]) for r in results}, key=lambda k: (_LOSSES.value.index(k[0]), k[1]))
  for loss, framework in keys:
    runs = [r for r in results if r["loss"] == loss and r["framework"] == framework]
    rates = [r["gen_steps_per_s"] for r in runs]
    median = statistics.median(rates)
    rows.append(
      {
        "loss": loss,
        "framework": framework,
        "gen_steps_per_s": median,
        "min": min(rates),
        "max": max(rates),
        "real_images_per_s": median * runs[0]["real_images_per_s"] / runs[0]["gen_steps_per_s"],
        "gflops_per_s": median * runs[0]["flops_per_step"] / 1e9,
        "first_step_s": statistics.median(r["first_step_s"] or 0 for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "n": len(runs),
      }
    )
  for row in rows:
    for reference in ("tf", "torch"):
      ref = next((r for r in rows if r["loss"] == row["loss"] and r["framework"] == reference), None)
      row[f"vs_{reference}"] = row["gen_steps_per_s"] / ref["gen_steps_per_s"] if ref else None
  return rows


def markdown(rows: list[dict]) -> str:
  header = "| loss | framework | gen steps/s (median [min, max]) | real img/s | GFLOP/s | % peak | first step s | peak RSS MB | vs TF | vs torch |"
  lines = [header, "|---" * (header.count("|") - 1) + "|"]
  for r in rows:
    ratio = lambda v: f"{v:.2f}x" if v is not None else ""
    lines.append(
      f"| {r['loss']} | {r['framework']} | {r['gen_steps_per_s']:.3f} [{r['min']:.3f}, {r['max']:.3f}] (n={r['n']}) "
      f"| {r['real_images_per_s']:.0f} | {r['gflops_per_s']:.0f} | {100 * r['gflops_per_s'] / _PEAK.value:.0f} % "
      f"| {r['first_step_s']:.1f} | {r['peak_rss_mb']:.0f} | {ratio(r['vs_tf'])} | {ratio(r['vs_torch'])} |"
    )
  return "\n".join(lines)


def main(argv):
  del argv
  if _WORKER.value:
    return run_worker(_WORKER.value)
  for framework in _FRAMEWORKS.value:
    if framework not in ("ganjax", "tf", "torch"):
      raise app.UsageError(f"--frameworks: unknown {framework!r}; allowed: ganjax, tf, torch")
  for loss in _LOSSES.value:
    if loss not in CONFIG_NAMES:
      raise app.UsageError(f"--losses: unknown {loss!r}; allowed: {', '.join(CONFIG_NAMES)}")
  results = []
  for round_index in range(1, _ROUNDS.value + 1):
    for loss in _LOSSES.value:
      for framework in [f for f in _FRAMEWORKS.value if f == "ganjax" or loss in PEER_LOSS]:
        for conv_impl in _CONV_IMPLS.value if framework == "ganjax" else [None]:
          result = measure(framework, loss, conv_impl, round_index, _BATCH.value)
          print(
            f"round {round_index} {loss:8s} {result['framework']:14s} {result['gen_steps_per_s']:.3f} gen steps/s "
            f"({result['wall_s']:.0f} s, load {result['load_avg']:.1f})",
            flush=True,
          )
          with open(_JSON.value, "a") as f:
            f.write(json.dumps(result) + "\n")
          results.append(result)
  print()
  print(markdown(summarise(results)))


if __name__ == "__main__":
  app.run(main)
