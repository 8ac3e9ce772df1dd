import os

from ganjax import runtime


def test_default_xla_flags_are_added_after_the_users_own():
  environ = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
  flags = runtime.configure_xla(environ)
  assert flags.startswith("--xla_force_host_platform_device_count=2 ")
  assert all(flag in flags for flag in runtime.CPU_FLAGS)
  assert environ["XLA_FLAGS"] == flags
  assert runtime.configure_xla(environ) == flags  # idempotent


def test_a_users_own_setting_of_a_default_option_wins_and_the_defaults_can_be_turned_off():
  own = "--xla_cpu_experimental_ynn_fusion_type=dot"
  assert runtime.configure_xla({"XLA_FLAGS": own}) == own
  assert runtime.configure_xla({"GANJAX_DEFAULT_XLA_FLAGS": "0"}) == ""


def test_the_compilation_cache_lives_in_the_users_cache_dir_unless_told_otherwise(tmp_path):
  home_default = runtime.compilation_cache_dir({})
  assert home_default.endswith(os.path.join(".cache", "ganjax", "xla"))
  assert runtime.compilation_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == str(tmp_path / "ganjax" / "xla")
  assert runtime.compilation_cache_dir({"GANJAX_COMPILATION_CACHE": str(tmp_path / "c")}) == str(tmp_path / "c")
  assert runtime.compilation_cache_dir({"GANJAX_COMPILATION_CACHE": "0", "XDG_CACHE_HOME": str(tmp_path)}) is None


def test_cpu_model_names_the_cpu_from_cpuinfo_else_the_platform(tmp_path):
  cpuinfo = tmp_path / "cpuinfo"
  cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9B45\nflags\t: avx512f\n")
  assert runtime.cpu_model(str(cpuinfo)) == "AMD EPYC 9B45"
  cpuinfo.write_text("processor\t: 0\n")  # no model name (e.g. some ARM kernels)
  fallback = runtime.cpu_model(str(cpuinfo))
  assert fallback and fallback == runtime.cpu_model(str(tmp_path / "missing"))


def test_the_semi_supervised_gan_keeps_xlas_defaults_and_the_other_runs_get_the_cpu_flags():
  assert runtime.cpu_flags_for({"conditioning": "semi_supervised"}) == ()
  assert runtime.cpu_flags_for({"conditioning": "none"}) == runtime.CPU_FLAGS
  environ = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
  assert runtime.configure_xla(environ, cpu_flags=()) == "--xla_force_host_platform_device_count=2"
