"""ganjax: GANs and Wasserstein GANs on MNIST in JAX/Flax, as a data augmentation tool."""

__version__ = "0.1.0"
