"""Sync-DRAW's figures and caption adherence (Mittal et al. 2017, Fig. 4, Sec. 4.5).

Caption adherence (ours; the paper shows samples only): a small classifier of digit and motion,
trained on freshly rendered GIFs (one or two digits, as the run's data) of every (digit, motion)
pair from the training digit images (so it cannot learn the training split's digit -> motion
pairing), tested on GIFs from the test digit images; then applied to GIFs generated from the
test split's captions, whose (digit, motion) pairs the caption model never saw (Sec. 4.5).
Two-digit GIFs (Fig. 12) are scored per named digit.
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
  classifier finds as the caption says; with the classifier's own test accuracy. For caption
  models on bouncing MNIST: single-digit (10 test captions) or two-digit (all 100 ordered pairs
  of test (digit, motion) pairs, scored per named digit by `score_two`)."""
  m, c = ctx.method, ctx.config
  if not m.captions or not c.dataset.startswith('bouncing_mnist/'):
    return Output()
  dc = bouncing_mnist.CONFIGS[c.dataset.split('/', 1)[1]]
  clf, acc = train_classifier(dc, classifier_steps, classifier_batch, c.seed, classifier_test_gifs)
  classify = jax.jit(lambda x: GifClassifier(dc.digits).apply({'params': clf}, x))
  generate = jax.jit(m.generate, static_argnums=2)
  pairs = [(d,) for d in range(10)] if dc.digits == 1 else [
      (a, b) for a in range(10) for b in range(10)]
  per_caption, gifs, hits, named = {}, [], {}, np.zeros((10, 2))
  for i, ds in enumerate(pairs):
    ms = [captions.split_motion(d, 'test') for d in ds]
    text = captions.caption_text(ds, ms)
    video = jax.nn.sigmoid(generate(ctx.state.params, jax.random.key(c.seed * 1000 + i), samples,
                                    m.caption_tokens(text))['canvases'][:, -1])
    logits = [np.asarray(v) for v in classify(video)]
    if dc.digits == 1:
      ok_d, ok_m = logits[0].argmax(-1) == ds[0], logits[1].argmax(-1) == ms[0]
      oks = {'digit': ok_d, 'motion': ok_m, 'both': ok_d & ok_m}
    else:
      oks = score_two(*logits, np.array(ds), np.array(ms))
      for j, d in enumerate(ds):   # per digit value: found, and times named
        named[d] += oks[f'digit_{j + 1}'].sum(), samples
    per_caption[text] = {k: float(v.mean()) for k, v in oks.items()}
    for k, v in oks.items():
      hits[k] = hits.get(k, 0) + float(v.sum())
    if i % (len(pairs) // 10) == 0:   # ten captions shown
      gifs.append(np.asarray(video[:4]))
  n = samples * len(pairs)
  result = {**{f'adherence_{k}': v / n for k, v in hits.items()},
            **{f'classifier_{k}_acc': v for k, v in acc.items()},
            'num_generated': n, 'per_caption': per_caption}
  if dc.digits == 2:
    result['per_digit'] = {str(d): float(named[d, 0] / named[d, 1]) for d in range(10)}
  rows = [np.concatenate(list(g), axis=2) for g in gifs]   # one row per shown caption, 4 samples
  step = int(ctx.step)
  files = {f'caption_adherence_{step}.json': result,
           f'caption_samples_{step}.gif': (np.asarray(to_rgb(np.concatenate(rows, axis=1))), 4)}
  return Output(scalars={k: v for k, v in result.items() if isinstance(v, float)}, files=files)


def score_two(presence, motion_logits, digits, motions):
  """Per-sample adherence of two-digit GIFs to one caption naming (digits[j], motions[j]),
  j = 0, 1: presence [B, 10] and motion_logits [B, 10, 2] from GifClassifier(digits=2).
  Named digit j is found when it is among the two most present digits (`digit_j`); its motion
  when the classifier's motion for that digit is motions[j] (`motion_j`); `both_j` is both;
  `digit`, `motion`, `both` average the two named digits and `all` needs all four right.
  -> dict of bool [B] (float [B] for the averages)."""
  top2 = np.argsort(-presence, axis=-1)[:, :2]
  out = {}
  for j in (0, 1):
    found = (top2 == digits[j]).any(-1)
    moved = motion_logits[:, digits[j]].argmax(-1) == motions[j]
    out.update({f'digit_{j + 1}': found, f'motion_{j + 1}': moved, f'both_{j + 1}': found & moved})
  for k in ('digit', 'motion', 'both'):
    out[k] = (out[f'{k}_1'].astype(float) + out[f'{k}_2']) / 2
  out['all'] = out['both_1'] & out['both_2']
  return out


# -------------------------------------------------------------------- digit/motion classifier
def render_batch(rng, dc, split, batch):
  """`batch` GIFs of `split`'s digit images with `dc.digits` digits of uniformly random classes
  and motions (a class drawn twice moves the same way both times) -> (float [B, N, H, W],
  digits [B, D], motions [B, D])."""
  images, labels = _digit_images(split, dc.digit_size)
  xs, ds, ms = [], [], []
  for _ in range(batch):
    if dc.digits == 1:
      frames, d, m = bouncing_mnist.make_gif(rng, split, 1, images, labels, dc.frames, dc.size,
                                             motions=[int(rng.integers(2))])
      x, d, m = frames[..., 0].astype(np.float32) / 255.0, d[:1], m[:1]
    else:
      table = rng.integers(0, 2, 10)   # one motion per class, so that labels are unambiguous
      d = rng.integers(0, 10, dc.digits)
      m = table[d]
      picks = [rng.choice(np.flatnonzero(labels == k)) for k in d]
      x = bouncing_mnist.render_gif(rng, images[picks], m, dc.frames, dc.size)
    xs.append(x)
    ds.append(d)
    ms.append(m)
  return np.stack(xs), np.array(ds), np.array(ms)


@functools.lru_cache(maxsize=4)
def _digit_images(split, size):
  return bouncing_mnist.digit_images(split, size)


def _classifier_loss(out, d, m):
  """Single digit: cross-entropies of digit and motion. Two digits: sigmoid cross-entropy of
  the 10 presences plus the motion cross-entropy of each present digit."""
  if d.shape[1] == 1:
    return (optax.softmax_cross_entropy_with_integer_labels(out[0], d[:, 0]).mean()
            + optax.softmax_cross_entropy_with_integer_labels(out[1], m[:, 0]).mean())
  present = jax.nn.one_hot(d, 10).max(1)                                   # [B, 10]
  motion = jnp.take_along_axis(out[1], d[..., None].repeat(2, -1), 1)        # [B, D, 2]
  return (optax.sigmoid_binary_cross_entropy(out[0], present).sum(-1).mean()
          + optax.softmax_cross_entropy_with_integer_labels(motion, m).mean())


def train_classifier(dc, steps: int, batch: int, seed: int = 0, test_gifs: int = 1000):
  """Trains GifClassifier on rendered GIFs of all (digit, motion) pairs from the training
  digit images -> (params, accuracies on GIFs from the test images: 'digit' and 'motion' per
  named digit, scored as the adherence is)."""
  rng = np.random.default_rng([seed, 99])
  net = GifClassifier(dc.digits)
  params = net.init(jax.random.key(seed), jnp.zeros((1, dc.frames, dc.size, dc.size)))['params']
  tx = optax.adam(1e-3)
  opt = tx.init(params)

  @jax.jit
  def step(params, opt, x, d, m):
    g = jax.grad(lambda p: _classifier_loss(net.apply({'params': p}, x), d, m))(params)
    updates, opt = tx.update(g, opt)
    return optax.apply_updates(params, updates), opt

  for _ in range(steps):
    params, opt = step(params, opt, *map(jnp.asarray, render_batch(rng, dc, 'train', batch)))
  x, d, m = render_batch(np.random.default_rng([seed, 98]), dc, 'test', test_gifs)
  out = [np.asarray(v) for v in jax.jit(lambda x: net.apply({'params': params}, x))(
      jnp.asarray(x))]
  if dc.digits == 1:
    return params, {'digit': float(np.mean(out[0].argmax(-1) == d[:, 0])),
                    'motion': float(np.mean(out[1].argmax(-1) == m[:, 0]))}
  scores = [score_two(o0[None], o1[None], di, mi)
            for o0, o1, di, mi in zip(out[0], out[1], d, m)]
  return params, {k: float(np.mean([s[k] for s in scores])) for k in ('digit', 'motion', 'all')}
