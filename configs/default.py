"""Every hyperparameter of a ganjax run, with its default: ganjax/config_defaults.py, re-exported here so that
experiment configs (and --config=configs/default.py) import and override it as before."""

from ganjax.config_defaults import adam, get_config, progan_adam, rmsprop  # noqa: F401
