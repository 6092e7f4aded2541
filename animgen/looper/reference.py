"""Exact reference for the JAX solver: the same expansion moves with every cut by PyMaxflow.

PyMaxflow (Boykov-Kolmogorov max-flow; in the `test` extra) is the oracle of the tests and the
reference of `bench/looper.py`. The move capacities come from `expansion.move_capacities`, so both
solvers cut exactly the same graphs; only the min-cut algorithm differs.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from animgen.looper import expansion


def mincut(source, sink, right, left, down, up):
  """(flow, source_side [H, W] bool) of a grid graph by PyMaxflow (exact, int capacities)."""
  import maxflow as pymaxflow
  source, sink = np.asarray(source), np.asarray(sink)
  h, w = source.shape
  g = pymaxflow.Graph[int]()
  ids = g.add_grid_nodes((h, w))
  g.add_grid_tedges(ids, source, sink)
  cap = np.zeros((h, w), np.int64)
  for fwd, bwd, struct, cut in ((right, left, np.array([[0, 0, 0], [0, 0, 1], [0, 0, 0]]), 1),
                                (down, up, np.array([[0, 0, 0], [0, 0, 0], [0, 1, 0]]), 0)):
    fwd, bwd = np.asarray(fwd), np.asarray(bwd)
    if fwd.size:
      cap[:] = 0
      rev = np.zeros_like(cap)
      sl = (slice(None), slice(0, w - 1)) if cut else (slice(0, h - 1), slice(None))
      cap[sl], rev[sl] = fwd, bwd
      g.add_grid_edges(ids, weights=cap, structure=struct, symmetric=False)
      # reverse capacities: edge (x + e) -> x, added from the neighbour's side
      sl2 = (slice(None), slice(1, w)) if cut else (slice(1, h), slice(None))
      back = np.zeros_like(cap)
      back[sl2] = bwd
      g.add_grid_edges(ids, weights=back, structure=struct[::-1, ::-1], symmetric=False)
  flow = g.maxflow()
  return int(flow), ~g.get_grid_segments(ids)


@functools.partial(jax.jit, static_argnames=('unary', 'pairwise'))
def _move_graph(unary, pairwise, problem, labels, a):
  terms = expansion._move_terms(unary, pairwise, problem, labels, a)
  return terms, expansion._capacities(*terms, None)


@functools.partial(jax.jit, static_argnames=('unary', 'pairwise'))
def _energy(unary, pairwise, problem, labels):
  return expansion.energy(unary, pairwise, problem, labels)


_move_energy = jax.jit(expansion.move_energy)


def alpha_expansion(unary, pairwise, problem, labels0, num_labels, sweeps=1):
  """`expansion.alpha_expansion` with PyMaxflow cuts: same order, truncation and acceptance."""
  labels = jnp.asarray(labels0, jnp.int32)
  e = _energy(unary, pairwise, problem, labels)
  for _ in range(sweeps):
    e_sweep = e
    for a in range(num_labels):
      terms, caps = _move_graph(unary, pairwise, problem, labels, a)
      switch = jnp.asarray(~mincut(*caps)[1])
      new = jnp.where(switch, a, labels)
      e_new = _move_energy(*terms, switch)
      if e_new < e:
        labels, e = new, e_new
    if not e < e_sweep:
      break
  return labels, e
