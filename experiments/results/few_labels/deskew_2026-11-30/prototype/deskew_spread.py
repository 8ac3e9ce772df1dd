"""Round-0 label spreading on raw vs deskewed pixels: how right are the unlabelled images' labels?"""
import sys, time, json
import jax, jax.numpy as jnp, numpy as np
from ganjax.data import mnist
from ganjax.few_labels import labelled, label_spreading
from configs import default

def deskew(images):  # uint8 [N,28,28,1] -> float32 [N,28,28] in [0,1], moment-deskewed and centred
  x = images[..., 0].astype(np.float32) / 255
  r, c = np.mgrid[:28, :28].astype(np.float32)
  @jax.jit
  def one(img):
    total = img.sum() + 1e-6
    mr, mc = (r * img).sum() / total, (c * img).sum() / total
    vr = ((r - mr) ** 2 * img).sum() / total
    crc = ((r - mr) * (c - mc) * img).sum() / total
    a = crc / vr
    # output (i,j) samples input at (i - 14 + mr, j + a*(i-14) - 14 + mc)... shift centre to 14,14
    src_r = r - 14 + mr
    src_c = c + a * (r - 14) - 14 + mc
    return jax.scipy.ndimage.map_coordinates(img, [src_r, src_c], order=1, mode="constant")
  out = jax.lax.map(one, jnp.asarray(x), batch_size=2000)
  return np.asarray(out)

def main():
  cfg = default.get_config()
  images, labels = mnist.load_split(cfg, "train")
  t = time.time(); desk = deskew(images); print("deskew", time.time() - t, flush=True)
  raw = images[..., 0].astype(np.float32) / 255
  settings = label_spreading.Spreading()
  for n, s in [(10, 0), (10, 1), (1, 0), (1, 1), (1, 2)]:
    few_idx = labelled.draw_labelled(labels, n, s)
    rest = np.setdiff1d(np.arange(len(labels)), few_idx)
    for name, feats in (("raw", raw), ("deskew", desk)):
      every = np.concatenate([feats[few_idx], feats[rest]]).reshape(len(labels), -1)
      t = time.time()
      probs = label_spreading.label_probabilities(every, np.arange(len(few_idx)), labels[few_idx].astype(np.int32), 10, settings.pixel_dims, settings)
      acc = float(np.mean(probs[len(few_idx):].argmax(1) == labels[rest]))
      print(json.dumps(dict(n=n, seed=s, features=name, accuracy=round(acc, 4), s=round(time.time() - t, 1))), flush=True)

if __name__ == "__main__":
  main()
