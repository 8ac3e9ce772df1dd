"""Process-level XLA settings, applied before JAX starts its backends (i.e. before the first computation)."""

import os

# XLA:CPU fuses dots, element-wise ops and reductions into YNNPACK kernels with this option (measured on the
# 2-core CI-like machine: +5-6 % generator steps/s with conv_impl='hybrid', README). It only touches the CPU
# backend.
CPU_FLAGS = ("--xla_cpu_experimental_ynn_fusion_type=dot,eltwise,reduce",)


def configure_xla(environ=os.environ) -> str:
  """Add ganjax's default XLA flags to XLA_FLAGS unless the user already set that option; returns XLA_FLAGS.

  Set GANJAX_DEFAULT_XLA_FLAGS=0 to keep XLA's own defaults (e.g. to measure what the flags are worth).
  """
  flags = environ.get("XLA_FLAGS", "")
  if environ.get("GANJAX_DEFAULT_XLA_FLAGS", "1") != "0":
    for flag in CPU_FLAGS:
      if flag.split("=")[0] not in flags:
        flags = f"{flags} {flag}".strip()
    environ["XLA_FLAGS"] = flags
  return flags
