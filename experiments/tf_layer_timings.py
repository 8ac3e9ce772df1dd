"""The TensorFlow side of experiments/layer_timings.py: the same five conv layers as Keras layers.

Runs in the TensorFlow venv of ../shared/peers (it imports neither ganjax nor the peers):

  /tmp/venv-tf/bin/python experiments/tf_layer_timings.py --batch=256 --repeats=5

Prints one markdown row per layer, as layer_timings.py does: forward, input-gradient and weight-gradient ms,
each a @tf.function timed as the median of --repeats calls after a warm-up call.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras
import tensorflow as tf
from keras import layers

# The rows of layer_timings.LAYERS, in the same order and with the same names.
LAYERS = [
  ("G convT 256->128 s1 7x7", (7, 7, 256), lambda: layers.Conv2DTranspose(128, 5, 1, "same", use_bias=False)),
  ("G convT 128->64 s2 7->14", (7, 7, 128), lambda: layers.Conv2DTranspose(64, 5, 2, "same", use_bias=False)),
  ("G convT 64->1 s2 14->28", (14, 14, 64), lambda: layers.Conv2DTranspose(1, 5, 2, "same", use_bias=False)),
  ("D conv 1->64 s2 28->14", (28, 28, 1), lambda: layers.Conv2D(64, 5, 2, "same")),
  ("D conv 64->128 s2 14->7", (14, 14, 64), lambda: layers.Conv2D(128, 5, 2, "same")),
]


def time_call(fn, repeats: int, *args) -> float:
  fn(*args)
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    for tensor in tf.nest.flatten(fn(*args)):
      tensor.numpy()
    times.append(time.perf_counter() - start)
  return statistics.median(times) * 1e3


def passes(layer):
  """(forward, d input, d weights) of `layer` as tf.functions of (x, cotangent)."""

  @tf.function
  def forward(x, cotangent):
    del cotangent
    return layer(x)

  @tf.function
  def d_input(x, cotangent):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = layer(x)
    return tape.gradient(y, x, output_gradients=cotangent)

  @tf.function
  def d_weights(x, cotangent):
    with tf.GradientTape() as tape:
      y = layer(x)
    return tape.gradient(y, layer.kernel, output_gradients=cotangent)

  return forward, d_input, d_weights


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--batch", type=int, default=256)
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args()
  keras.utils.set_random_seed(0)
  for name, shape, factory in LAYERS:
    layer = factory()
    x = tf.random.normal([args.batch, *shape])
    cotangent = tf.random.normal(layer(x).shape)
    times = [time_call(fn, args.repeats, x, cotangent) for fn in passes(layer)]
    print(f"| {name} | tf {tf.__version__} | " + " | ".join(f"{t:.1f}" for t in times) + " |", flush=True)


if __name__ == "__main__":
  main()
