"""The method's eval_step averaged over the test split, sharded over the mesh."""
import jax
import numpy as np

from animgen import sharding
from animgen.evaluators import EvalContext, Output


def evaluate(ctx: EvalContext) -> Output:
  """Mean of every eval_step output over the test examples (padding masked), and their count."""
  repl, data_sh = sharding.replicated(ctx.mesh), sharding.batch_sharded(ctx.mesh)
  method = ctx.method
  inputs = method.eval_inputs(ctx.state, ctx.artefacts)
  step = jax.jit(method.eval_step, in_shardings=(repl, data_sh, repl), out_shardings=repl,
                 compiler_options=method.compiler_options)
  sums, count = {}, 0
  for batch, mask in ctx.batches():
    out = jax.device_get(step(ctx.state, batch, inputs))
    for k, v in out.items():
      sums[k] = sums.get(k, 0.0) + float(np.sum(np.asarray(v)[mask]))
    count += int(mask.sum())
  scalars = {k: v / max(count, 1) for k, v in sums.items()}
  scalars['num_examples'] = count
  return Output(scalars=scalars)
