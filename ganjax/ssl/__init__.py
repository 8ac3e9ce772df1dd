"""The semi-supervised GAN (Improved GAN, Salimans et al. 2016): a critic that is a 10-class classifier trained
on a few labels, the unlabelled images and G's fakes, with a generator trained by feature matching."""
