"""How right each saved namer's pseudo-labels are (the true labels are read only here): python ... OUT_DIR"""
import glob, os, re, sys, json
import numpy as np
from configs import default
from ganjax.data import mnist
from ganjax.few_labels import labelled

images, labels = mnist.load_split(default.get_config(), "train")
for path in sorted(glob.glob(os.path.join(sys.argv[1], "namers", "*.npz"))):
  n, s = map(int, re.match(r"N(\d+)_s(\d+)_", os.path.basename(path)).groups())
  few_idx = labelled.draw_labelled(labels, n, s)
  truth = labels[np.setdiff1d(np.arange(len(labels)), few_idx)]
  with np.load(path) as f:
    pseudo, acc = f["pseudo_labels"], f["round_accuracies"]
  print(json.dumps({"namer": os.path.basename(path), "label_accuracy": round(float(np.mean(pseudo == truth)), 4),
                    "round_test_accuracies": [round(float(a), 4) for a in acc]}))
