"""Exact reference for the JAX solver: the same expansion moves with every cut by PyMaxflow.

PyMaxflow (Boykov-Kolmogorov max-flow; in the `test` extra) is the oracle of the tests and the
reference of `bench/looper.py`. The move capacities come from `expansion.move_capacities`, so both
solvers cut exactly the same graphs; only the min-cut algorithm differs.
"""
import functools

import jax
import jax.numpy as jnp

from animgen.looper import expansion, maxflow


mincut = maxflow.host_mincut


@functools.partial(jax.jit, static_argnames=('unary', 'pairwise'))
def _move_graph(unary, pairwise, problem, labels, a):
  terms = expansion._move_terms(unary, pairwise, problem, labels, a)
  return terms, expansion._capacities(*terms, expansion._auto_scale(*terms))


@functools.partial(jax.jit, static_argnames=('unary', 'pairwise'))
def _energy(unary, pairwise, problem, labels):
  return expansion.energy(unary, pairwise, problem, labels)


_move_energy = jax.jit(expansion.move_energy)


def alpha_expansion(unary, pairwise, problem, labels0, num_labels, sweeps=1, num_moves=None):
  """`expansion.alpha_expansion` with PyMaxflow cuts: same order, truncation and acceptance
  (moves for the first num_moves labels only, if given)."""
  labels = jnp.asarray(labels0, jnp.int32)
  e = _energy(unary, pairwise, problem, labels)
  for _ in range(sweeps):
    e_sweep = e
    for a in range(num_labels if num_moves is None else min(num_moves, num_labels)):
      terms, caps = _move_graph(unary, pairwise, problem, labels, a)
      switch = jnp.asarray(~mincut(*caps)[1])
      new = jnp.where(switch, a, labels)
      e_new = _move_energy(*terms, switch)
      if e_new < e:
        labels, e = new, e_new
    if not e < e_sweep:
      break
  return labels, e
