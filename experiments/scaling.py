"""How a training epoch's cost grows with the batch size and the number of devices.

  python experiments/scaling.py                                  # batches 64..2048, 1/2/4/8 CPU devices
  python experiments/scaling.py --losses=gan --batches=64,256 --cpu_devices=1,8 --out=runs/scaling

Each point is one `experiments/benchmark.py` measurement (its own process, warm-up excluded) of the real
training step. Seconds per epoch = generator steps per epoch (60000 // batch real batches, n_critic per
generator step) / generator steps per second. On a CPU the device counts are fake devices
(`--xla_force_host_platform_device_count`) sharing the same cores: they show the data-parallel overhead,
not a speed-up. Writes scaling.md, scaling.jsonl and scaling.png to --out.
"""

import json
import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import benchmark  # its flags (--losses, --steps, --warmup, --batch, --conv_impls) apply here too

from ganjax import config as config_lib
from ganjax.data import mnist

_BATCHES = flags.DEFINE_list("batches", ["64", "128", "256", "512", "1024", "2048"], "Batch sizes (on 1 device).")
_CPU_DEVICES = flags.DEFINE_list("cpu_devices", ["1", "2", "4", "8"], "Device counts (at --batch).")
_OUT = flags.DEFINE_string("out", "runs/scaling", "Output directory.")


def seconds_per_epoch(loss: str, batch: int, gen_steps_per_s: float) -> float:
  config = benchmark.paper_config(loss, batch)
  real_batches = config_lib.batches_per_epoch(config, mnist.TRAIN_SIZE)
  return real_batches / config.num_critic_steps / gen_steps_per_s


def plot(rows: list[dict], path: str) -> None:
  from ganjax.plots import plt

  figure, (by_batch, by_devices) = plt.subplots(1, 2, figsize=(10, 4))
  for loss in dict.fromkeys(r["loss"] for r in rows):
    points = [r for r in rows if r["loss"] == loss and r["sweep"] == "batch"]
    by_batch.plot([r["batch"] for r in points], [r["s_per_epoch"] for r in points], "o-", label=loss)
    points = [r for r in rows if r["loss"] == loss and r["sweep"] == "devices"]
    by_devices.plot([r["devices"] for r in points], [r["s_per_epoch"] for r in points], "o-", label=loss)
  by_batch.set(xlabel="batch size (1 device)", ylabel="seconds per epoch", title="batch size")
  by_devices.set(xlabel="CPU devices", ylabel="seconds per epoch", title="devices (same cores)")
  for axes, key, sweep in ((by_batch, "batch", "batch"), (by_devices, "devices", "devices")):
    ticks = sorted({r[key] for r in rows if r["sweep"] == sweep})
    axes.set_xscale("log", base=2)
    axes.set_xticks(ticks, [str(t) for t in ticks])
    axes.minorticks_off()
    axes.grid(alpha=0.3)
    axes.legend()
  figure.tight_layout()
  figure.savefig(path, dpi=100)
  plt.close(figure)


_REPLOT = flags.DEFINE_bool("replot", False, "Only redraw scaling.png from --out's scaling.jsonl.")


def main(argv):
  del argv
  os.makedirs(_OUT.value, exist_ok=True)
  if _REPLOT.value:
    with open(os.path.join(_OUT.value, "scaling.jsonl")) as f:
      return plot([json.loads(line) for line in f], os.path.join(_OUT.value, "scaling.png"))
  conv_impl = benchmark._CONV_IMPLS.value[0]
  points = [("batch", int(b), 1) for b in _BATCHES.value]
  points += [("devices", benchmark._BATCH.value, int(d)) for d in _CPU_DEVICES.value]
  rows = []
  with open(os.path.join(_OUT.value, "scaling.jsonl"), "w") as jsonl:
    for loss in benchmark._LOSSES.value:
      for sweep, batch, devices in points:
        result = benchmark.measure("ganjax", loss, conv_impl, 1, batch, cpu_devices=devices)
        row = {
          "sweep": sweep,
          "loss": loss,
          "batch": batch,
          "devices": devices,
          "gen_steps_per_s": result["gen_steps_per_s"],
          "real_images_per_s": result["real_images_per_s"],
          "s_per_epoch": seconds_per_epoch(loss, batch, result["gen_steps_per_s"]),
          "peak_rss_mb": result["peak_rss_mb"],
          "first_step_s": result["first_step_s"],
        }
        print(json.dumps(row), flush=True)
        jsonl.write(json.dumps({**result, **row}) + "\n")
        rows.append(row)
  lines = ["| loss | sweep | batch | devices | s / epoch | real img/s | first step s | peak RSS MB |", "|---" * 8 + "|"]
  for r in rows:
    lines.append(
      f"| {r['loss']} | {r['sweep']} | {r['batch']} | {r['devices']} | {r['s_per_epoch']:.0f} "
      f"| {r['real_images_per_s']:.0f} | {r['first_step_s']:.1f} | {r['peak_rss_mb']:.0f} |"
    )
  with open(os.path.join(_OUT.value, "scaling.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  plot(rows, os.path.join(_OUT.value, "scaling.png"))
  print("\n".join(lines))
  print(f"wrote {_OUT.value}/scaling.{{md,jsonl,png}}")


if __name__ == "__main__":
  app.run(main)
