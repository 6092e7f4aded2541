"""Image2GIF Tables 1, 3 and 4 (Zhou et al. 2018, Sec. 5.2, 5.4, 5.5), per motion pattern.

Every table has three rows over the same test sequences: the model and two baselines, "copy the
input frame" (Sec. 5.4's Constant) and "mean training frame" (ours: the input, then the per-pixel
mean of the true output frames 1..length-1, padding excluded, of up to MEAN_SEQUENCES training
sequences evenly spaced through the split: all of them in the CPU and test datasets). How the
figures are computed, and where the paper is silent (Table 3's scaling, Table 4's window score):
animgen/methods/image2gif.py.
"""
import functools

import jax
import numpy as np

from animgen import input_pipeline, sharding
from animgen.datasets.image2gif_patterns import PATTERNS
from animgen.evaluators import EvalContext, Output

FIGURES = ('psnr', 'ssim', 'diff_psnr', 'diff_ssim', 'centre_distance')
BASELINES = {'copy_input': 'Copy the input frame', 'mean_frame': 'Mean training frame'}
MEAN_SEQUENCES = 2000


def mean_output_frame(records, max_sequences: int = MEAN_SEQUENCES):
  """(per-pixel mean [64, 64, 3] in [0, 1] of the frames 1..length-1 of up to `max_sequences`
  records evenly spaced through `records`, the number of records used)."""
  n = len(records)
  index = np.unique(np.linspace(0, n - 1, min(n, max_sequences)).round().astype(int))
  total, count = 0.0, 0
  for i in index:
    r = records[int(i)]
    frames = np.asarray(r['frames'][1:int(r['length'])], np.float64)
    total, count = total + frames.sum(0), count + len(frames)
  return (total / max(count, 1) / 255.0).astype(np.float32), len(index)


@functools.lru_cache(maxsize=4)
def _training_mean(dataset, data_dir, manual_dir):
  builder = input_pipeline.prepare(dataset, data_dir, manual_dir)
  return mean_output_frame(builder.as_data_source(split='train'))


def evaluate(ctx: EvalContext) -> Output:
  """Per pattern and row, the mean of the per-sequence figures over the test split ->
  eval_tables_<step>.json / .md and scalars: '<figure>' and 'num_examples' (the model over every
  test sequence, as the 'metrics' evaluator would give: configs/image2gif.py runs this one in its
  place, so that the test split is generated once), '<figure>/<pattern>' and
  '<baseline>/<figure>/<pattern>'."""
  c = ctx.config
  mean, used = _training_mean(c.dataset, c.get('data_dir'), c.get('manual_dir'))
  repl, data_sh = sharding.replicated(ctx.mesh), sharding.batch_sharded(ctx.mesh)
  fn = jax.jit(ctx.method.table_metrics, in_shardings=(repl, data_sh, repl), out_shardings=repl)
  rows = {}
  for batch, mask in ctx.batches():
    out = jax.device_get(fn(ctx.state.params, batch, mean))
    patterns = np.asarray(jax.device_get(batch['pattern']))
    for i in np.flatnonzero(mask):
      rows.setdefault(PATTERNS[int(patterns[i])], []).append(
          {row: {k: float(v[i]) for k, v in figs.items()} for row, figs in out.items()})
  table = {p: _pattern_entry(rows[p]) for p in PATTERNS if p in rows}
  every = [s for p in rows for s in rows[p]]
  name = 'RNN+DQN' if ctx.method.dqn else 'RNN'
  step = int(ctx.step)
  files = {f'eval_tables_{step}.json': {'step': step, 'model': name, 'per_pattern': table,
                                        'mean_frame_sequences': used},
           f'eval_tables_{step}.md': format_tables(table, name, step, used)}
  # the model's means over all test sequences (what the generic 'metrics' evaluator gives)
  scalars = {k: float(np.mean([s['model'][k] for s in every])) for k in FIGURES}
  scalars['num_examples'] = len(every)
  scalars.update({f'{k}/{p}': v[k] for p, v in table.items() for k in FIGURES})
  scalars.update({f'{b}/{k}/{p}': v['baselines'][b][k] for p, v in table.items()
                  for b in BASELINES for k in FIGURES})
  return Output(scalars=scalars, files=files)


def _pattern_entry(seqs):
  """[{row: {figure: value}}] of one pattern's sequences -> the model's means, 'count' and
  'baselines': {baseline: means}."""
  means = lambda row: {k: float(np.mean([s[row][k] for s in seqs])) for k in FIGURES}
  return {**means('model'), 'count': len(seqs), 'baselines': {b: means(b) for b in BASELINES}}


def format_tables(table, name, step, mean_sequences):
  """Markdown of Tables 1, 3 and 4: per pattern (and their average), the baselines and the model."""
  pats = list(table)
  cols = pats + (['average'] if len(pats) > 1 else [])
  head = '| | ' + ' | '.join(cols) + ' |\n|---|' + '---|' * len(cols) + '\n'

  def row(label, source, fmt):
    vals = [source(table[p]) for p in pats]
    if len(pats) > 1:
      vals.append({k: float(np.mean([v[k] for v in vals])) for k in FIGURES})
    return f'| {label} | ' + ' | '.join(fmt(v) for v in vals) + ' |\n'

  def block(title, fmt):
    lines = [row(label, lambda e, b=b: e['baselines'][b], fmt) for b, label in BASELINES.items()]
    return f'\n{title}\n\n' + head + ''.join(lines) + row(name, lambda e: e, fmt)

  pair = lambda a, b: lambda v: f'{v[a]:.2f} / {v[b]:.4f}'
  return (f'step {step}; mean training frame over {mean_sequences} training sequences\n'
          + block('Table 1 (PSNR dB / SSIM of the generated frames)', pair('psnr', 'ssim'))
          + block('Table 3 (PSNR dB / SSIM of consecutive-frame differences; the copy row is '
                  "the paper's Constant)", pair('diff_psnr', 'diff_ssim'))
          + block('Table 4 (distance in px between the true and the found object centres)',
                  lambda v: f"{v['centre_distance']:.3f}"))
