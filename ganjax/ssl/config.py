"""Validation of the semi-supervised GAN's fields (conditioning semi_supervised; ganjax/config.py calls it)."""

import ml_collections

from ganjax.ssl import pseudo_labels
from ganjax.validation import is_int, is_number, positive_ints, require


def validate(config: ml_collections.ConfigDict) -> None:
  """The semi-supervised GAN's models and losses (ganjax/ssl/): one device, one critic step per generator step."""
  for field in ("ssl_critic_features", "ssl_generator_features"):
    widths = config[field]
    may_be_empty = field == "ssl_critic_features" and bool(config.ssl_critic_conv_features)
    allowed = (
      "positive widths (none: the logits follow the convolutions)" if may_be_empty else "one or more positive widths"
    )
    valid = (len(widths) >= 1 or may_be_empty) and all(is_int(w) and w >= 1 for w in widths)
    require(valid, field, widths, allowed)
  channels = config.ssl_critic_conv_features
  require(all(is_int(c) and c >= 1 for c in channels), "ssl_critic_conv_features", channels, "positive channel counts")
  dropout = config.critic_conv_dropout
  require(is_number(dropout) and 0 <= dropout < 1, "critic_conv_dropout", dropout, "it must be in [0, 1)")
  non_negative = (
    "critic_input_noise",
    "critic_hidden_noise",
    "unlabelled_weight",
    "collapse_generator_loss",
    "unlabelled_entropy_weight",
    "consistency_weight",
    "class_balance_weight",
    "pseudo_label_weight",
    "labelled_augment",
    "unlabelled_augment",
    "pseudo_label_epochs",
  )
  for field in non_negative:
    require(is_number(config[field]) and config[field] >= 0, field, config[field], "it must be a number >= 0")
  graphs = pseudo_labels.GRAPHS
  require(config.pseudo_label_graph in graphs, "pseudo_label_graph", config.pseudo_label_graph, f"one of {graphs}")
  fraction = config.pseudo_label_fraction
  require(is_number(fraction) and 0 < fraction <= 1, "pseudo_label_fraction", fraction, "it must be in (0, 1]")
  least = config.pseudo_label_min_probability
  require(is_number(least) and 0 <= least < 1, "pseudo_label_min_probability", least, "it must be in [0, 1)")
  require(isinstance(config.freeze_hidden_scales, bool), "freeze_hidden_scales", config.freeze_hidden_scales, "a bool")
  positive_ints(config, "labelled_batch_size")
  for field in ("labelled_shift", "unlabelled_shift"):
    require(is_int(config[field]) and 0 <= config[field] <= 8, field, config[field], "pixels: an integer in [0, 8]")
  for field in ("critic_ema_decay", "collapse_unlabelled_loss"):
    require(is_number(config[field]) and 0 <= config[field] < 1, field, config[field], "it must be in [0, 1)")
  patience = config.collapse_patience
  require(is_int(patience) and patience >= 0, "collapse_patience", patience, "an integer >= 0 (0: never stop)")
  require(config.num_critic_steps == 1, "num_critic_steps", config.num_critic_steps, "semi_supervised takes 1")
  require(
    config.num_devices == 1 and config.parallel == "jit",
    "num_devices",
    config.num_devices,
    "semi_supervised trains on one device (its noise is drawn per batch): set num_devices=1, parallel='jit'",
  )
