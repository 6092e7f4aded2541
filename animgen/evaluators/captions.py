"""Sync-DRAW's figures and caption adherence (Mittal et al. 2017, Fig. 4, Sec. 4.5).

Caption adherence (ours; the paper shows samples only): a small classifier of digit and motion,
trained on freshly rendered single-digit GIFs of every (digit, motion) pair from the training
digit images (so it cannot learn the training split's digit -> motion pairing), tested on GIFs
from the test digit images; then applied to GIFs generated from the test split's captions,
whose (digit, motion) pairs the caption model never saw (Sec. 4.5).
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from animgen import captions
from animgen.datasets import bouncing_mnist
from animgen.evaluators import EvalContext, Output
from animgen.methods.syncdraw import to_rgb
from animgen.models.syncdraw import GifClassifier


def attention(ctx: EvalContext) -> Output:
  """Fig. 4: canvases and write windows of one generated GIF -> attention_<step>.png / .gif."""
  m = ctx.method
  grid, steps = m.attention_figure(ctx.state.params, jax.random.key(m.config.seed + 7),
                                   m.figure_tokens())
  step = int(ctx.step)
  return Output(files={f'attention_{step}.png': grid, f'attention_{step}.gif': (steps, 2)})


def adherence(ctx: EvalContext, samples: int = 100, classifier_steps: int = 1500,
              classifier_batch: int = 64, classifier_test_gifs: int = 1000) -> Output:
  """Share of GIFs generated from each unseen test caption whose digit, motion, and both, the
  classifier finds as the caption says; with the classifier's own test accuracy. Only for
  caption models on single-digit bouncing MNIST."""
  m, c = ctx.method, ctx.config
  if not m.captions or not c.dataset.startswith('bouncing_mnist/single_digit'):
    return Output()
  dc = bouncing_mnist.CONFIGS[c.dataset.split('/', 1)[1]]
  clf, acc = train_classifier(dc, classifier_steps, classifier_batch, c.seed, classifier_test_gifs)
  classify = jax.jit(lambda x: GifClassifier().apply({'params': clf}, x))
  generate = jax.jit(m.generate, static_argnums=2)
  per_caption, gifs, hits, n = {}, [], {'digit': 0, 'motion': 0, 'both': 0}, 0
  for d in range(10):
    motion = captions.split_motion(d, 'test')
    text = captions.caption_text([d], [motion])
    video = jax.nn.sigmoid(generate(ctx.state.params, jax.random.key(c.seed * 100 + d), samples,
                                    m.caption_tokens(text))['canvases'][:, -1])
    ld, lm = classify(video)
    ok_d = np.asarray(jnp.argmax(ld, -1)) == d
    ok_m = np.asarray(jnp.argmax(lm, -1)) == motion
    per_caption[text] = {'digit': float(ok_d.mean()), 'motion': float(ok_m.mean()),
                         'both': float((ok_d & ok_m).mean())}
    for k, ok in (('digit', ok_d), ('motion', ok_m), ('both', ok_d & ok_m)):
      hits[k] += int(ok.sum())
    n += len(ok_d)
    gifs.append(np.asarray(video[:4]))
  result = {**{f'adherence_{k}': v / n for k, v in hits.items()},
            'classifier_digit_acc': acc['digit'], 'classifier_motion_acc': acc['motion'],
            'num_generated': n, 'per_caption': per_caption}
  rows = [np.concatenate(list(g), axis=2) for g in gifs]   # one row per caption, 4 samples
  step = int(ctx.step)
  files = {f'caption_adherence_{step}.json': result,
           f'caption_samples_{step}.gif': (np.asarray(to_rgb(np.concatenate(rows, axis=1))), 4)}
  return Output(scalars={k: v for k, v in result.items() if isinstance(v, float)}, files=files)


# -------------------------------------------------------------------- digit/motion classifier
def render_batch(rng, dc, split, batch):
  """`batch` single-digit GIFs of `split`'s digit images with uniformly random (digit, motion)
  -> (float [B, N, H, W], digits [B], motions [B])."""
  images, labels = _digit_images(split, dc.digit_size)
  xs, ds, ms = [], [], []
  for _ in range(batch):
    motion = [int(rng.integers(2))]
    frames, d, m = bouncing_mnist.make_gif(rng, split, 1, images, labels, dc.frames, dc.size,
                                           motions=motion)
    xs.append(frames[..., 0].astype(np.float32) / 255.0)
    ds.append(d[0])
    ms.append(m[0])
  return np.stack(xs), np.array(ds), np.array(ms)


@functools.lru_cache(maxsize=4)
def _digit_images(split, size):
  return bouncing_mnist.digit_images(split, size)


def train_classifier(dc, steps: int, batch: int, seed: int = 0, test_gifs: int = 1000):
  """Trains GifClassifier on rendered GIFs of all (digit, motion) pairs from the training
  digit images -> (params, {'digit': acc, 'motion': acc} on GIFs from the test images)."""
  rng = np.random.default_rng([seed, 99])
  net = GifClassifier()
  params = net.init(jax.random.key(seed), jnp.zeros((1, dc.frames, dc.size, dc.size)))['params']
  tx = optax.adam(1e-3)
  opt = tx.init(params)

  @jax.jit
  def step(params, opt, x, d, m):
    def loss(p):
      ld, lm = net.apply({'params': p}, x)
      return (optax.softmax_cross_entropy_with_integer_labels(ld, d).mean()
              + optax.softmax_cross_entropy_with_integer_labels(lm, m).mean())
    g = jax.grad(loss)(params)
    updates, opt = tx.update(g, opt)
    return optax.apply_updates(params, updates), opt

  for _ in range(steps):
    params, opt = step(params, opt, *map(jnp.asarray, render_batch(rng, dc, 'train', batch)))
  x, d, m = render_batch(np.random.default_rng([seed, 98]), dc, 'test', test_gifs)
  ld, lm = jax.jit(lambda x: net.apply({'params': params}, x))(jnp.asarray(x))
  acc = {'digit': float(np.mean(np.asarray(jnp.argmax(ld, -1)) == d)),
         'motion': float(np.mean(np.asarray(jnp.argmax(lm, -1)) == m))}
  return params, acc
