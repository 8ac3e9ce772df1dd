"""Studies that train and measure many runs: the ablation runner and the augmentation benchmark."""
