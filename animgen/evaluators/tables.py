"""Image2GIF Tables 1, 3 and 4 (Zhou et al. 2018, Sec. 5.2, 5.4, 5.5), per motion pattern."""
import jax
import numpy as np

from animgen import sharding
from animgen.datasets.image2gif_patterns import PATTERNS
from animgen.evaluators import EvalContext, Output

TABLE_KEYS = ('psnr', 'ssim', 'diff_psnr', 'diff_ssim', 'const_diff_psnr', 'const_diff_ssim',
              'centre_distance')


def evaluate(ctx: EvalContext) -> Output:
  """Per pattern, the mean of the method's per-sequence figures over the test split ->
  eval_tables_<step>.json / .md and scalars '<figure>/<pattern>'."""
  repl, data_sh = sharding.replicated(ctx.mesh), sharding.batch_sharded(ctx.mesh)
  fn = jax.jit(ctx.method.sequence_metrics, in_shardings=(repl, data_sh), out_shardings=repl)
  rows = {}
  for batch, mask in ctx.batches():
    out = jax.device_get(fn(ctx.state.params, batch))
    patterns = np.asarray(jax.device_get(batch['pattern']))
    for i in np.flatnonzero(mask):
      rows.setdefault(PATTERNS[int(patterns[i])], []).append(
          {k: float(v[i]) for k, v in out.items()})
  table = {p: {k: float(np.mean([r[k] for r in rows[p]])) for k in rows[p][0]} | {
      'count': len(rows[p])} for p in PATTERNS if p in rows}
  name = 'RNN+DQN' if ctx.method.dqn else 'RNN'
  step = int(ctx.step)
  files = {f'eval_tables_{step}.json': {'step': step, 'model': name, 'per_pattern': table},
           f'eval_tables_{step}.md': format_tables(table, name, step)}
  scalars = {f'{k}/{p}': v[k] for p, v in table.items() for k in TABLE_KEYS}
  return Output(scalars=scalars, files=files)


def format_tables(table, name, step):
  """Markdown rows of Tables 1, 3 and 4 for one model."""
  pats = list(table)
  head = '| | ' + ' | '.join(pats) + ' |\n|---|' + '---|' * len(pats) + '\n'
  row = lambda label, f: f'| {label} | ' + ' | '.join(f(table[p]) for p in pats) + ' |\n'
  return (f'step {step}\n\nTable 1 (PSNR / SSIM)\n\n' + head
          + row(name, lambda v: f"{v['psnr']:.2f} / {v['ssim']:.4f}")
          + '\nTable 3 (frame differences, PSNR / SSIM)\n\n' + head
          + row('Constant', lambda v: f"{v['const_diff_psnr']:.2f} / {v['const_diff_ssim']:.4f}")
          + row(name, lambda v: f"{v['diff_psnr']:.2f} / {v['diff_ssim']:.4f}")
          + '\nTable 4 (centre distance, px)\n\n' + head
          + row(name, lambda v: f"{v['centre_distance']:.3f}"))
