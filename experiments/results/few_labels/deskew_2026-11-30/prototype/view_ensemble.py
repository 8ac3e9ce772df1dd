"""Labels from two graphs: the deskewed pixels' and the namer's final CNN features'; alone and combined.

python view_ensemble.py NAMER.npz N LABEL_SEED  (from the repository root, PYTHONPATH=.)"""
import json, os, sys
import numpy as np
from configs import default
from ganjax.data import mnist
from ganjax.eval import classifiers
from ganjax.few_labels import labelled, label_spreading, self_training

sys.path.insert(0, os.path.dirname(__file__))
from deskew_spread import deskew  # noqa: E402

path, n, s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
images, labels = mnist.load_split(default.get_config(), "train")
few = labelled.split(images, labels, n, s)
truth = labels[np.setdiff1d(np.arange(len(labels)), few.labelled_indices)]
recipe = classifiers.small_cnn_recipe(2000)
with np.load(path) as f:
  params = self_training.params_from_bytes(recipe, f["params"])
every = np.concatenate([few.labelled_images, few.unlabelled_images])
seeds, sp = np.arange(len(few.labelled_labels)), label_spreading.Spreading()
L = len(seeds)
p_pix = label_spreading.label_probabilities(deskew(every), seeds, few.labelled_labels, 10, sp.pixel_dims, sp)[L:]
feats = classifiers.features(recipe.model, params, every)
p_cnn = label_spreading.label_probabilities(feats, seeds, few.labelled_labels, 10, sp.feature_dims, sp)[L:]
p_clf = self_training.probabilities(recipe, params, few.unlabelled_images)
acc = lambda p: round(float(np.mean(p.argmax(1) == truth)), 4)
out = dict(pix=acc(p_pix), cnn=acc(p_cnn), clf=acc(p_clf), pix_plus_cnn=acc(p_pix + p_cnn), all3=acc(p_pix + p_cnn + p_clf),
           pix_times_cnn=acc(np.log(p_pix + 1e-6) + np.log(p_cnn + 1e-6)))
print(json.dumps(dict(n=n, seed=s, namer=os.path.basename(path)) | out), flush=True)
