"""Per-frame rollout curves: generated frames against the true clip, next to a still baseline.

landscape_sequences: Animating Landscape Sec. 6.2 / Fig. 10 (RMSE and LPIPS per predicted frame,
  over the chosen codebook codes: mean, min and max per frame index; the still input alongside).
deepgifs_rollout: DeepGIFs' rollout table (PSNR and SSIM per generated frame; copying the seed
  frame alongside), with a strip of examples; on Moving MNIST optionally the share of digits
  recognised in one generated frame (evaluators.digits).
"""
import jax
import jax.numpy as jnp
import numpy as np

from animgen import sharding
from animgen.evaluators import EvalContext, Output
from animgen.methods.deepgifs import PSNR_CAP  # dB, for frames equal to the truth
from animgen.methods.landscape_common import to_signed
from animgen.ops import generate, metrics, warp



def _true_clips(ctx, frames: int, size: int):
  """The first `frames` frames of every test clip at size x size -> [N, T, S, S, 3] in [-1, 1]."""
  src = ctx.records()
  clips = [np.asarray(src[i]['frames'][:frames]) for i in range(len(src))]
  t = min(len(c) for c in clips)
  gt = to_signed(jnp.asarray(np.stack([c[:t] for c in clips])))
  if gt.shape[2:4] != (size, size):
    n = gt.shape[0]
    gt = warp.resize(gt.reshape((n * t,) + gt.shape[2:]), size, size).reshape(n, t, size, size, 3)
  return gt


def _per_clip_fn(method, params, t, alex):
  from animgen.models import vgg

  @jax.jit
  def per_clip(first, truth, z):
    """first [1, S, S, 3], truth [T, S, S, 3], z [Z] -> rmse, lpips [T - 1], and the still's."""
    frames = generate.motion_frames(lambda x, zz: method.predict(params, x, zz), first,
                                    z[None], t, speed=1.0)[1:, 0]
    still = jnp.broadcast_to(first, frames.shape)
    rmse = lambda a: jnp.sqrt(jnp.mean(jnp.square((a - truth[1:]) * 0.5), axis=(1, 2, 3)))
    lp = lambda a: vgg.lpips_alex(a, truth[1:], alex)
    return rmse(frames), lp(frames), rmse(still), lp(still)

  return per_clip


def landscape_sequences(ctx: EvalContext, frames: int = 24) -> Output:
  """From the first frame of every test clip, predict `frames` - 1 frames recurrently with each
  chosen codebook code; RMSE (pixels in [0, 1]) and LPIPS-AlexNet per frame against the truth,
  averaged over clips, then mean/min/max over the codes, next to the still input."""
  from animgen.models import vgg
  codes = ctx.method.eval_inputs(ctx.state, ctx.artefacts)
  if not frames or codes is None:
    return Output()
  gt = _true_clips(ctx, frames, ctx.method.size)
  t = gt.shape[1]
  per_clip = _per_clip_fn(ctx.method, ctx.state.params, t, vgg.load_weights('alexnet'))
  per_code = {'rmse': [], 'lpips': []}
  still = {}
  for z in jnp.asarray(codes):
    out = [per_clip(gt[i, :1], gt[i], z) for i in range(gt.shape[0])]
    per_code['rmse'].append(np.mean([o[0] for o in out], 0))
    per_code['lpips'].append(np.mean([o[1] for o in out], 0))
    still = {'rmse': np.mean([o[2] for o in out], 0), 'lpips': np.mean([o[3] for o in out], 0)}
  return _sequences_output(ctx.step, per_code, still, int(gt.shape[0]), len(codes), t)


def _sequences_output(step, per_code, still, num_clips, num_codes, t) -> Output:
  idx = list(range(1, t))
  record = {'step': int(step), 'frames': idx, 'num_clips': num_clips, 'num_codes': num_codes}
  panels = []
  for k in ('rmse', 'lpips'):
    a = np.stack(per_code[k])                                           # [K, T - 1]
    record[k] = {'mean': a.mean(0).tolist(), 'min': a.min(0).tolist(),
                 'max': a.max(0).tolist(), 'still': np.asarray(still[k]).tolist()}
    panels.append((f'{k.upper()} per predicted frame ({num_codes} codes)',
                   [('animgen (mean, min-max)', idx, a.mean(0), a.min(0), a.max(0)),
                    ('still input', idx, still[k], None, None)]))
  scalars = {'seq_rmse': float(np.mean(record['rmse']['mean'])),
             'seq_rmse_still': float(np.mean(record['rmse']['still'])),
             'seq_lpips': float(np.mean(record['lpips']['mean'])),
             'seq_lpips_still': float(np.mean(record['lpips']['still']))}
  return Output(scalars=scalars, files={f'eval_sequences_{int(step)}.json': record,
                                        f'eval_sequences_{int(step)}.png': panels})


def rollout_table(pred, truth):
  """Per-frame metrics of generated clips against the truth, next to the copy-the-seed baseline.

  pred, truth: [N, T, H, W, C] in [0, 1], pred[:, 0] the seed (= truth[:, 0]). Returns numpy
  arrays [T - 1] for frames 1..T-1, each the mean over the N clips: psnr, ssim (generated) and
  psnr_copy, ssim_copy (every frame = truth[:, 0]). PSNR is capped at PSNR_CAP dB."""
  truth, pred = jnp.asarray(truth), jnp.asarray(pred)
  copy = jnp.broadcast_to(truth[:, :1], truth[:, 1:].shape)
  pred, truth = pred[:, 1:], truth[:, 1:]
  out = {'psnr': metrics.psnr(pred, truth, cap=PSNR_CAP), 'ssim': metrics.ssim(pred, truth),
         'psnr_copy': metrics.psnr(copy, truth, cap=PSNR_CAP), 'ssim_copy': metrics.ssim(copy, truth)}
  return {k: np.asarray(jnp.mean(v, axis=0)) for k, v in out.items()}


def _generate_clips(ctx, clips, t):
  """The method's rollout of `clips` (uint8 [N, T, ...]) in batches sharded over the mesh."""
  repl, data_sh = sharding.replicated(ctx.mesh), sharding.batch_sharded(ctx.mesh)
  fn = jax.jit(lambda st, b: ctx.method.rollout(st, b, t), in_shardings=(repl, data_sh),
               out_shardings=repl)
  bs, n = ctx.config.eval.batch_size, len(clips)
  out = []
  for i in range(0, n, bs):
    chunk = clips[i:i + bs]
    pad = np.concatenate([chunk, np.repeat(chunk[-1:], bs - len(chunk), 0)]) if len(chunk) < bs \
        else chunk
    gen = np.asarray(jax.device_get(fn(ctx.state, sharding.shard_batch({'frames': pad},
                                                                       ctx.mesh))))
    out.append(gen[:len(chunk)])
  return np.concatenate(out)


def deepgifs_rollout(ctx: EvalContext, clips: int = 64, digit_frame: int = 0,
                     classifier_steps: int = 1500, classifier_batch: int = 128) -> Output:
  """From the first frame of each of the first `clips` test clips, generate the clip's length and
  compare every generated frame with the truth (PSNR, SSIM), next to repeating the seed frame.
  With `digit_frame` (Moving MNIST only) also the share of digits a classifier trained for
  `classifier_steps` finds at their true places in that frame (evaluators.digits)."""
  method = ctx.method
  if method.phase == 'vaegan':
    return Output()   # the LSTM is not trained yet
  src = ctx.records()
  n = min(len(src), clips)
  truth_u8 = np.stack([method.make_example(src[i], None, False)['frames'] for i in range(n)])
  t = truth_u8.shape[1]
  gen = _generate_clips(ctx, truth_u8, t)
  truth = truth_u8.astype(np.float32) / 255.0
  table = rollout_table(gen, truth)
  idx = list(range(1, t))
  step = int(ctx.step)
  record = {'step': step, 'num_clips': int(n), 'frames': idx,
            **{k: [round(float(x), 4) for x in v] for k, v in table.items()}}
  scalars = {f'rollout_{k}': float(np.mean(v)) for k, v in table.items()}
  if digit_frame:
    found = _digits_found(ctx, src, gen, truth, min(digit_frame, t - 1), classifier_steps,
                          classifier_batch)
    record['digits'] = found
    scalars.update({f'digits_{k}': v for k, v in found.items() if isinstance(v, float)})
  curve = lambda k: [('DeepGIFs rollout', idx, table[k], None, None),
                     ('copy seed frame', idx, table[f'{k}_copy'], None, None)]
  files = {f'eval_rollout_{step}.json': record,
           f'eval_rollout_{step}.png': [('PSNR (dB) per generated frame', curve('psnr')),
                                        ('SSIM per generated frame', curve('ssim'))],
           f'rollout_examples_{step}.png': example_strip(truth[:3], gen[:3])}
  return Output(scalars=scalars, files=files)


def _digits_found(ctx, src, gen, truth, t, steps, batch) -> dict:
  """evaluators.digits.recognition of frame t of the rollouts, with the classifier's accuracy."""
  from animgen.datasets import moving_mnist
  from animgen.errors import InputError
  from animgen.evaluators import digits
  name = ctx.config.dataset
  if not name.startswith('moving_mnist/') or 'labels' not in src[0]:
    raise InputError(f'evals.rollout.digit_frame needs a moving_mnist dataset, not {name!r}: '
                     'set it to 0')
  if truth.shape[2] != np.asarray(src[0]['frames']).shape[1]:
    raise InputError('evals.rollout.digit_frame needs image_size equal to the dataset frames '
                     f'({np.asarray(src[0]["frames"]).shape[1]} px): set it to 0')
  n = len(gen)
  positions = np.stack([np.asarray(src[i]['positions']) for i in range(n)])
  labels = np.stack([np.asarray(src[i]['labels']) for i in range(n)])
  additive = moving_mnist.CONFIGS[name.split('/', 1)[1]].additive
  classify, acc = digits.train_classifier(steps, batch, ctx.config.seed, truth.shape[2], additive)
  return {'frame': int(t), **digits.recognition(classify, gen, truth, positions, labels, t),
          'classifier_test_acc': acc}


def example_strip(truth, gen):
  """For each clip a pair of rows, truth above generated, frames left to right ([N, T, H, W, C]
  in [0, 1]), 2 px gaps -> uint8 [rows, cols, 3]."""
  n, t, h, w, _ = truth.shape
  canvas = np.full((n * (2 * h + 6), t * (w + 2), 3), 255, np.uint8)
  for i in range(n):
    for r, clip in enumerate((truth[i], gen[i])):
      for j in range(t):
        y, x = i * (2 * h + 6) + r * (h + 2), j * (w + 2)
        canvas[y:y + h, x:x + w] = np.round(np.broadcast_to(
            clip[j], (h, w, 3)) * 255).astype(np.uint8)
  return canvas
