"""Are the right digits in the right places? Digit recognition in Moving MNIST rollouts (ours).

A small CNN (models.deepgifs.DigitClassifier) learns the digit of 28x28 crops around one digit
of freshly composed two-digit frames (the dataset's composition rule, its training digit
images, the crop jittered by up to 2 px), and is tested on crops from its test digit images.
Applied to frame t of generated clips at the true digit corners of frame t, it says how often the
generated frame holds the clip's digit where the true clip has it; the copy-the-seed baseline
(frame 0 cropped at frame t's corners) and the true frame t (the classifier's ceiling) beside it.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax

from animgen.datasets import digits as digits_lib
from animgen.datasets import moving_mnist
from animgen.models.deepgifs import DigitClassifier

SIZE = 28   # Moving MNIST digit size


def crops(frames: np.ndarray, positions: np.ndarray, t: int) -> np.ndarray:
  """frames [N, T, H, W, C], positions [N, T, n, 2] (x, y top-left corners) -> the n digit
  windows of frame t of every clip, [N * n, 28, 28, C] (clip-major)."""
  corners = np.round(positions[:, t]).astype(np.int64)
  return np.stack([frames[i, t, y:y + SIZE, x:x + SIZE]
                   for i in range(len(frames)) for x, y in corners[i]])


def render_crops(rng, images, labels, batch: int, size: int = 64, additive: bool = True,
                 jitter: int = 2):
  """`batch` crops (float [B, 28, 28, 1] in [0, 1]) around the first of two random digits
  composed into a size x size frame, the window shifted by up to `jitter` px -> (crops, labels)."""
  xs, ys = [], []
  for _ in range(batch):
    pick = rng.integers(0, len(images), 2)
    pos = rng.uniform(0, size - SIZE, (1, 2, 2))
    frame = moving_mnist.compose(images[pick], pos, size, additive)[0]
    x, y = np.clip(np.round(pos[0, 0]) + rng.integers(-jitter, jitter + 1, 2), 0,
                   size - SIZE).astype(np.int64)
    xs.append(frame[y:y + SIZE, x:x + SIZE])
    ys.append(labels[pick[0]])
  return np.stack(xs)[..., None].astype(np.float32) / 255.0, np.asarray(ys, np.int32)


def shipped_split(split: str):
  """The shipped digits of Moving MNIST's `split` (moving_mnist.split_mask)."""
  images, labels = digits_lib.load_digits()
  keep = moving_mnist.split_mask(labels, split)
  return images[keep], labels[keep]


def train_classifier(steps: int, batch: int, seed: int = 0, size: int = 64,
                     additive: bool = True, test_crops: int = 1000):
  """DigitClassifier trained on crops of the training digits -> (classify fn crops -> labels,
  its accuracy on crops of the test digits, no jitter)."""
  rng = np.random.default_rng([seed, 97])
  images, labels = shipped_split('train')
  net = DigitClassifier()
  params = net.init(jax.random.key(seed), jnp.zeros((1, SIZE, SIZE, 1)))['params']
  tx = optax.adam(1e-3)
  opt = tx.init(params)

  @jax.jit
  def step(params, opt, x, y):
    loss = lambda p: optax.softmax_cross_entropy_with_integer_labels(
        net.apply({'params': p}, x), y).mean()
    updates, opt = tx.update(jax.grad(loss)(params), opt)
    return optax.apply_updates(params, updates), opt

  for _ in range(steps):
    x, y = render_crops(rng, images, labels, batch, size, additive)
    params, opt = step(params, opt, jnp.asarray(x), jnp.asarray(y))
  predict = jax.jit(lambda x: jnp.argmax(net.apply({'params': params}, x), -1))
  classify = lambda x: np.asarray(predict(jnp.asarray(x, jnp.float32)))
  test_images, test_labels = shipped_split('test')
  x, y = render_crops(np.random.default_rng([seed, 96]), test_images, test_labels, test_crops,
                      size, additive, jitter=0)
  return classify, float(np.mean(classify(x) == y))


def recognition(classify, gen, truth, positions, labels, t: int) -> dict:
  """Share of digits found at frame t: of the generated clips, of the seed frame copied (frame
  0 cropped at frame t's corners) and of the true frame t. gen, truth [N, T, H, W, 1] in [0, 1],
  positions [N, T, n, 2], labels [N, n]."""
  copy = np.broadcast_to(truth[:, :1], truth.shape)
  labels = np.asarray(labels).reshape(-1)
  acc = lambda frames: float(np.mean(classify(crops(frames, positions, t)) == labels))
  return {'generated': acc(gen), 'copy_seed': acc(copy), 'truth': acc(truth)}
