"""Every hyperparameter of a ganjax run, with its default (configs/default.py re-exports it for the
experiment configs, which import and override it).

The defaults are the paper's GAN: the TF DCGAN tutorial recipe (non-saturating loss, Adam 1e-4, batch 256).
"""

import ml_collections


def adam(learning_rate: float, b1: float = 0.9, b2: float = 0.999) -> ml_collections.ConfigDict:
  # eps 1e-7 is Keras's default; the paper trained with Keras.
  return ml_collections.ConfigDict(dict(name="adam", learning_rate=learning_rate, b1=b1, b2=b2, eps=1e-7))


def progan_adam(learning_rate: float = 1e-3) -> ml_collections.ConfigDict:
  # ProGAN's (Karras et al. 2018): a high rate without momentum; what the tuned recipes measured best.
  return adam(learning_rate, b1=0.0, b2=0.99)


def rmsprop(learning_rate: float) -> ml_collections.ConfigDict:
  # Keras's RMSprop: decay 0.9 and g / (sqrt(v) + 1e-7), i.e. eps outside the square root.
  return ml_collections.ConfigDict(
    dict(name="rmsprop", learning_rate=learning_rate, decay=0.9, eps=1e-7, eps_in_sqrt=False)
  )


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0  # the one root of all randomness: init, data order, noise, dropout

  # Data: tensorflow-datasets MNIST, train split only.
  config.data_dir = ""  # '' -> $TFDS_DATA_DIR, else ~/tensorflow_datasets
  config.mnist_idx_dir = ""  # optional folder with the four MNIST IDX .gz files to prepare from offline
  config.download = True  # may fetch and prepare MNIST when data_dir has no prepared copy
  config.mnist_url = ""  # where to fetch the IDX files; '' -> tfds's MNIST mirror
  config.batch_size = 256  # real images per critic step (and fakes per generator step)
  config.train_subset = 0  # > 0: train on the first N training images only (tests)
  config.examples_per_class = 0  # > 0: train on the first N images of each class only (small-data studies)
  # conditioning few_labels and semi_supervised: this many labelled images per digit, drawn at random with
  # label_seed; every other training image is used without its label (docs/few_labels.md).
  config.labels_per_class = 0
  config.label_seed = 0

  # Length: num_epochs passes over the 60k images, counted in real batches (n_critic per generator step).
  config.num_epochs = 60
  config.num_train_steps = -1  # generator steps; > 0 overrides num_epochs

  # Models (the paper's DCGAN).
  config.latent_dim = 100
  config.generator_features = (256, 128, 64)  # Dense 7x7xF0, ConvT F1 (stride 1), ConvT F2 (stride 2)
  config.critic_features = (64, 128)  # stride-2 5x5 convolutions
  config.dropout_rate = 0.3  # in the critic only
  config.leaky_relu_slope = 0.3  # Keras's LeakyReLU default
  config.batch_norm_momentum = 0.99  # Keras's BatchNormalization defaults
  config.batch_norm_epsilon = 1e-3
  # How stride-2 (transposed) convolutions are computed; the function and parameters are the same either way
  # (ganjax/layers.py). auto: "hybrid" on CPU (faster on XLA:CPU, docs/performance.md), "plain" elsewhere.
  config.conv_impl = "auto"  # auto | plain | phase | hybrid
  # DiffAugment (ganjax/diff_augment.py): the critic sees real and fake images alike randomly transformed, for
  # GANs on a few hundred images. Comma-separated: translation, cutout; "" = off.
  config.critic_augment = ""

  # Conditioning (ganjax/conditioning.py): what G and the critic are told about each image.
  #   none: unconditional; digit: the MNIST digit (configs/cgan.py); clusters: k-means clusters of all training
  #   images, no labels used (self-conditioning); digit_clusters: (digit, k-means cluster within the digit);
  #   few_labels: the clusters of all images, named after digits from labels_per_class labels per digit by a
  #   self-trained classifier, which also checks every sample (ganjax/few_labels/); semi_supervised: G
  #   unconditional, the critic a digit classifier trained on the labelled few and all images (configs/ssl_gan.py).
  config.conditioning = "none"
  config.num_clusters = 0  # (few_labels,) clusters: of all images; digit_clusters: within each digit; else 0
  config.self_training_rounds = 2  # few_labels: pseudo-labelling rounds of the namer after its labelled-only one
  # few_labels: who labels the unlabelled images each round: spreading (label spreading on a k-NN graph) | classifier
  config.self_training_labeller = "spreading"
  config.self_training_steps = 2000  # few_labels: classifier steps per round (classifiers.SMALL_CNN_RECIPE)
  # few_labels: a sample of digit d is kept if the namer gives it d with at least this probability (0: all kept)
  config.few_labels_min_confidence = 0.9
  config.critic_label_input = "projection"  # projection | concat: how a conditional critic sees the label
  # Class heads on the critic (conditioning digit or digit_clusters; ganjax/losses.py): none | ac (AC-GAN: a head
  # classifies real digits, G makes digits it recognises) | tac (TAC-GAN: and a twin head learns the fakes' digits).
  config.class_head = "none"
  config.class_head_weight = 1.0  # the heads' cross-entropy weight in the critic's loss and G's
  # tac only: > 0 caps each fake's twin cross-entropy in G's loss at this value (log 10 = 2.303: the twin head
  # at chance), so G gains nothing from fooling the twin beyond chance; the unbounded term starts blow-ups
  # (docs/performance.md). 0: TAC-GAN as published.
  config.twin_loss_cap = 0.0

  # The semi-supervised GAN (conditioning semi_supervised, ganjax/ssl/; Improved GAN's MLPs, with loss
  # feature_matching): read by no other run.
  config.ssl_critic_features = (1000, 500, 250, 250, 250)  # weight-normalised dense layers (data-dependent init)
  config.ssl_critic_conv_features = ()  # e.g. (64, 128): the paper's critic's 5x5 stride-2 convolutions first
  config.critic_conv_dropout = 0.3  # after each of those convolutions' LeakyReLU, in training
  config.ssl_generator_features = (500, 500)  # dense -> batch norm without scale -> softplus
  config.critic_input_noise = 0.3  # Gaussian noise std on the critic's input in training
  config.critic_hidden_noise = 0.5  # and after each hidden layer
  config.freeze_hidden_scales = True  # the hidden layers' weight-norm scales stay at their data-dependent init
  config.labelled_batch_size = 100  # labelled images per critic step (the few, tiled and reshuffled)
  config.unlabelled_weight = 1.0  # of the real-vs-fake term in the critic's loss
  config.critic_ema_decay = 0.9999  # the critic's moving average, which evaluation and recognition read
  config.labelled_shift = 0  # > 0: the labelled images move by up to this many pixels per axis, each its own
  config.unlabelled_shift = 0  # and the unlabelled images the critic sees (G's feature-matching batch does not)
  config.labelled_augment = 0.0  # > 0: then a classic augmentation (affine + elastic) of this strength (1: full)
  config.unlabelled_augment = 0.0  # of the unlabelled images the critic sees
  config.unlabelled_entropy_weight = 0.0  # > 0: the critic also minimises its unlabelled digits' class entropy
  config.consistency_weight = 0.0  # > 0: and the distance of its digit probabilities on two views of each image
  config.class_balance_weight = 0.0  # > 0: and how far its average digit probabilities are from uniform
  # > 0: and its cross-entropy to pseudo-labels of the unlabelled images: label spreading's on a graph of
  # their deskewed (or raw) pixels, the most confident pseudo_label_fraction of each digit, of those only the
  # ones spread with probability >= pseudo_label_min_probability (ganjax/ssl/pseudo_labels.py); the weight
  # falls linearly to 0 at epoch pseudo_label_epochs (0: it stays)
  config.pseudo_label_weight = 0.0
  config.pseudo_label_graph = "deskewed"  # deskewed | pixels
  config.pseudo_label_fraction = 0.8
  config.pseudo_label_min_probability = 0.0
  config.pseudo_label_epochs = 0.0
  # The run stops as collapsed when, over this many metric windows in a row (0: never), the unlabelled loss is
  # below the first bound and G's feature-matching loss above the second (ganjax/ssl/actions.py CheckCollapse).
  config.collapse_patience = 3
  config.collapse_unlabelled_loss = 0.02
  config.collapse_generator_loss = 30.0

  # Sampling (grids, evaluation, export).
  config.ema_decay = 0.0  # > 0: sample and evaluate with an exponential moving average of G's parameters
  # G's BatchNorm when sampling (grids, evaluation, export): moving (its moving statistics, Keras's inference
  # mode) | batch (the statistics of the sampled batch, as in training; ganjax/steps.py sample says why).
  config.sampling_batch_norm = "moving"
  # G's noise when sampling is z ~ N(0, s^2 I) with this s: 1 samples G as trained; < 1 is the truncation
  # trick (typical, less varied digits), > 1 draws more varied ones (what a classifier trained on them needs).
  config.sampling_latent_scale = 1.0

  # Objective: minimax | non_saturating | wgan | wgan_gp.
  config.loss = "non_saturating"
  config.num_critic_steps = 1  # critic updates (each on a fresh real batch) per generator update
  config.clip_value = 0.01  # wgan only: critic parameters are clipped to [-c, c]
  config.gradient_penalty_weight = 10.0  # wgan_gp only: lambda
  # A logged loss or logit mean beyond +-this stops the run as diverged (before a checkpoint is written).
  config.divergence_bound = 1e6

  # Optimisers: name is an optax function (adam | adamw | rmsprop | sgd), the other fields its arguments.
  config.generator_optimizer = adam(1e-4)
  config.critic_optimizer = adam(1e-4)
  # Both optimisers' step sizes over the run (for fixed-budget recipes): none (constant) | linear | cosine: from
  # the full rate down to 0 at the run's last generator step, starting after this fraction of the run (a run
  # resumed with another length decays over the new one).
  config.learning_rate_decay = "none"
  config.learning_rate_decay_start = 0.0

  # Data parallelism over devices (and processes); the maths does not depend on the device count.
  config.parallel = "jit"  # jit (over a device mesh) | pmap
  config.num_devices = 0  # 0: every device; the batch size must be a multiple of the device count
  config.distributed = False  # multi-process run: jax.distributed.initialize (auto-detects SLURM etc.)
  config.coordinator_address = ""  # explicit set-up instead of auto-detection: "host:port" of process 0,
  config.num_processes = 1  # the number of processes
  config.process_id = 0  # and this process's index

  # Outputs.
  config.log_every_steps = 50  # generator steps between metrics.jsonl records (and progress lines)
  config.progress_every_seconds = 10.0  # also a console progress line this often (0: only every log_every_steps)
  config.checkpoint_every_steps = 500  # generator steps; a checkpoint is also written at the end
  config.keep_checkpoints = 3
  config.sample_epochs = (10, 60)  # sample grids after these epochs (the paper's), and after the last
  config.num_sample_images = 64  # fixed noise batch of the grids (a square number; conditional: row i = digit i)

  # Evaluation (ganjax/metrics.py, against the 10k MNIST test images in the evaluator's feature space).
  config.eval_every_epochs = 0  # > 0: evaluate every E epochs during training (into metrics.jsonl)
  config.eval_at_end = True  # evaluate the final state into eval.json
  config.eval_num_samples = 10_000  # generated images per evaluation (balanced over classes if conditional)
  config.eval_cas = False  # conditional runs: also train a classifier on the samples (CAS; ~1 min on CPU)
  return config
