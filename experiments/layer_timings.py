"""Where a training step's time goes: forward, input-gradient and weight-gradient time of every conv layer.

  python experiments/layer_timings.py [--conv_impls=plain,phase] [--batch=256]
  python experiments/layer_timings.py --conv_impls=hybrid --tf_python=/tmp/venv-tf/bin/python   # + Keras rows

Each (layer, pass) is jitted alone and timed as the median of --repeats calls after a warm-up, so the
numbers say which convolutions XLA runs slowly, not how they add up inside a fused step.
"""

import os
import statistics
import subprocess
import sys
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ganjax import runtime

runtime.configure_xla()

import flax.linen as nn
import jax

from ganjax import layers

_CONV_IMPLS = flags.DEFINE_list("conv_impls", ["plain", "phase"], "Implementations to time.")
_BATCH = flags.DEFINE_integer("batch", 256, "Batch size.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed calls per measurement (median reported).")
_TF_PYTHON = flags.DEFINE_string(
  "tf_python", "", "Also time the same layers in TensorFlow/Keras: the Python of a TF venv (../shared/peers)."
)

# (name, input shape without batch, module factory per impl): the paper networks' convolution layers.
LAYERS = [
  ("G convT 256->128 s1 7x7", (7, 7, 256), lambda impl: nn.ConvTranspose(128, (5, 5), (1, 1), "SAME", use_bias=False)),
  ("G convT 128->64 s2 7->14", (7, 7, 128), lambda impl: layers.stride2_conv_transpose(64, impl, use_bias=False)),
  ("G convT 64->1 s2 14->28", (14, 14, 64), lambda impl: layers.stride2_conv_transpose(1, impl, use_bias=False)),
  ("D conv 1->64 s2 28->14", (28, 28, 1), lambda impl: layers.stride2_conv(64, impl)),
  ("D conv 64->128 s2 14->7", (14, 14, 64), lambda impl: layers.stride2_conv(128, impl)),
]


def time_call(fn, *args) -> float:
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(_REPEATS.value):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return statistics.median(times) * 1e3


def main(argv):
  del argv
  print(f"backend {jax.default_backend()}, batch {_BATCH.value}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')}")
  print("| layer | impl | forward ms | d input ms | d weights ms |")
  print("|---|---|---|---|---|")
  for name, shape, factory in LAYERS:
    for impl in _CONV_IMPLS.value:
      module = factory(impl)
      x = jax.random.normal(jax.random.key(0), (_BATCH.value, *shape))
      params = module.init(jax.random.key(1), x)
      forward = jax.jit(module.apply)
      y = forward(params, x)
      cotangent = jax.random.normal(jax.random.key(2), y.shape)
      d_input = jax.jit(lambda p, x, c, m=module: jax.vjp(lambda x: m.apply(p, x), x)[1](c))
      d_weights = jax.jit(lambda p, x, c, m=module: jax.vjp(lambda p: m.apply(p, x), p)[1](c))
      print(
        f"| {name} | {impl} | {time_call(forward, params, x):.1f} | {time_call(d_input, params, x, cotangent):.1f} "
        f"| {time_call(d_weights, params, x, cotangent):.1f} |",
        flush=True,
      )
  if _TF_PYTHON.value:  # its own process and venv: TensorFlow never enters this one
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tf_layer_timings.py")
    command = [_TF_PYTHON.value, script, f"--batch={_BATCH.value}", f"--repeats={_REPEATS.value}"]
    subprocess.run(command, check=True)


if __name__ == "__main__":
  app.run(main)
