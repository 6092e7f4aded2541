"""Alpha-expansion (Boykov, Veksler & Zabih 2001) over label indices, with exact grid min cuts.

Each move is a binary problem solved with the Kolmogorov & Zabih (2004) construction. The looping
energy is not a metric (Liao et al. 2013), so non-submodular edge terms are truncated as in
Rother et al. (2005) and a move is kept only if the true energy drops. jit-able with `unary`,
`pairwise`, `num_labels` and `sweeps` static, and vmappable over `problem` and `labels0`.
"""
import functools

import jax
import jax.numpy as jnp
from jax import lax

from animgen.looper import maxflow

# Auto scale: a move's total capacity becomes about 2^29 and each rounded term at most 2^25, so
# no int32 sum in the graph construction or the min cut can overflow.
_TOTAL_CAPACITY = 2.0 ** 29


def _ends(lab, axis):
  """Labels of the first and second pixel of every right (axis=1) or down (axis=0) edge."""
  return (lab[:, :-1], lab[:, 1:]) if axis == 1 else (lab[:-1], lab[1:])


def _to_nodes(edge, axis, second):
  """Edge values [H, W-1] / [H-1, W] added onto their first or second pixel, as [H, W]."""
  pad = [(0, 0), (0, 0)]
  pad[axis] = (1, 0) if second else (0, 1)
  return jnp.pad(edge, pad)


def energy(unary, pairwise, problem, labels):
  """Sum of unary costs plus pairwise costs over all right and down edges (float32)."""
  return jnp.sum(unary(problem, labels)) + sum(
      jnp.sum(pairwise(problem, *_ends(labels, axis), axis)) for axis in (1, 0))


def _auto_scale(d0, d1, edges):
  """Float -> int32 scale of one move from its float total capacity and largest term."""
  diff, total = d1 - d0, 0.0
  for axis, (a, b, c, d) in zip((1, 0), edges):  # the construction of _move_cut, unrounded
    half = jnp.maximum(a + d - b - c, 0) / 2
    diff = diff + _to_nodes(c + half - a, axis, False) + _to_nodes(d - c - half, axis, True)
    total = total + jnp.sum(b + c + 2 * half - a - d)
  total = total + jnp.sum(jnp.abs(diff))
  terms = [d0, d1] + [t for e in edges for t in e]
  big = jnp.max(jnp.stack([jnp.max(jnp.abs(t), initial=0.0) for t in terms]))
  return _TOTAL_CAPACITY / jnp.maximum(jnp.maximum(total, 16 * big), 1e-20)


def _current(unary, pairwise, problem, labels):
  """Costs of the current labelling: unary [H, W] and the edge terms of both axes."""
  return unary(problem, labels), [pairwise(problem, *_ends(labels, axis), axis)
                                  for axis in (1, 0)]


def _move_terms(unary, pairwise, problem, labels, a, current=None):
  """Unary costs of keeping / switching (D0, D1) and per edge axis [A, B, C, D] of a move.
  `current` (from `_current`) saves re-evaluating D0 and A."""
  full = jnp.full_like(labels, a)
  d0, cur_edges = current or _current(unary, pairwise, problem, labels)
  d1 = unary(problem, full)
  # Per edge (x, z): A = V(cur, cur), B = V(cur, a), C = V(a, cur), D = V(a, a), each on its
  # own (not vmapped together): the cost terms skip the work their own labels do not need.
  edges = []
  for axis, a_ in zip((1, 0), cur_edges):
    (x, z), (ax, az) = _ends(labels, axis), _ends(full, axis)
    edges.append([a_] + [pairwise(problem, p, q, axis) for p, q in ((x, az), (ax, z), (ax, az))])
  return d0, d1, edges


def rounding_bound(shape, scale):
  """How much float energy a move's cut can lose to the int32 rounding of its capacities at
  `scale`: the integer energy of every cut is within 0.5 per pixel (its unary term) and 2 per
  edge (the term's own rounding, plus the truncation excess of four rounded terms, halved and
  floored) of scale x the cut's truncated float energy, so the cut that is optimal on the
  integers is at most twice that sum, / scale, above the float-optimal cut of the move."""
  h, w = shape
  units = 0.5 * h * w + 2.0 * (h * (w - 1) + (h - 1) * w)
  return 2.0 * units / scale


def move_rounding(d0, d1, edges, scale):
  """How much float energy this move's cut can lose to the int32 rounding of its capacities at
  `scale`, from the terms themselves: every cut's integer energy differs from scale x its
  truncated float energy by at most M = the sum over pixels of the larger rounding residual of
  D0, D1 and over edges of the largest of the four configurations' (the truncation excess
  included), each widened by the float32 error of the product; so the integer-optimal cut is
  at most 2 M / scale above the float-optimal one. Up to that widening, never above
  `rounding_bound`'s worst case, and below it wherever terms round by less than the worst."""
  eps = 2.0 ** -23
  prod = lambda v: v * scale
  res = lambda q_, exact: jnp.abs(q_.astype(jnp.float32) - exact) + jnp.abs(exact) * eps
  q = lambda v: jnp.round(prod(v)).astype(jnp.int32)
  total = jnp.sum(jnp.maximum(res(q(d0), prod(d0)), res(q(d1), prod(d1))))
  for a_, b_, c_, d_ in edges:
    qa, qb, qc, qd = map(q, (a_, b_, c_, d_))
    excess = jnp.maximum(qa + qd - qb - qc, 0)
    half = prod(jnp.maximum(a_ + d_ - b_ - c_, 0) / 2)   # the float truncation of the move
    worst = jnp.maximum(jnp.maximum(res(qa, prod(a_)), res(qd, prod(d_))),
                        jnp.maximum(res(qb + excess // 2, prod(b_) + half),
                                    res(qc + excess - excess // 2, prod(c_) + half)))
    total = total + jnp.sum(worst)
  return 2.0 * total / scale


def _capacities(d0, d1, edges, scale):
  q = lambda v: jnp.round(v * scale).astype(jnp.int32)
  # y = 1 (switch to a) is the sink side. Node x pays c1 - c0 = D1 - D0 plus the edge parts below.
  diff, weights = q(d1) - q(d0), []
  for axis, terms in zip((1, 0), edges):
    a_, b_, c_, d_ = map(q, terms)
    # Truncation (Rother et al. 2005): raise B and C by halves of A + D - B - C when it is
    # positive, so the term is submodular, an upper bound, and exact at y = 0: moves never worsen.
    excess = jnp.maximum(a_ + d_ - b_ - c_, 0)
    b_, c_ = b_ + excess // 2, c_ + excess - excess // 2
    # V(y_x, y_z) = A + (C - A) y_x + (D - C) y_z + (B + C - A - D) (1 - y_x) y_z (K&Z 2004).
    diff = diff + _to_nodes(c_ - a_, axis, False) + _to_nodes(d_ - c_, axis, True)
    weights.append(b_ + c_ - a_ - d_)
  zero = [jnp.zeros_like(w) for w in weights]
  return jnp.maximum(diff, 0), jnp.maximum(-diff, 0), weights[0], zero[0], weights[1], zero[1]


def move_capacities(unary, pairwise, problem, labels, a, scale=None):
  """int32 grid capacities (source, sink, right, left, down, up) of the truncated expansion move
  to label `a` (the arguments of `maxflow.grid_mincut`); the sink side is the pixels that switch."""
  terms = _move_terms(unary, pairwise, problem, labels, a)
  return _capacities(*terms, _auto_scale(*terms) if scale is None else scale)


def _move(unary, pairwise, problem, labels, a, scale, current, mincut='push-relabel',
          with_rounding=False):
  """(pixels that switch to `a` in the min cut of the truncated move, costs of the labelling
  after it as `_current` gives them, its true energy, its `move_rounding` or 0).

  Everything is read from the move's own untruncated terms, so no cost is evaluated twice."""
  d0, d1, edges = _move_terms(unary, pairwise, problem, labels, a, current)
  scale = _auto_scale(d0, d1, edges) if scale is None else scale
  _, keep = maxflow.mincut_fn(mincut)(*_capacities(d0, d1, edges, scale))
  after = _after(d0, d1, edges, ~keep)
  rounding = move_rounding(d0, d1, edges, scale) if with_rounding else jnp.float32(0)
  return ~keep, after, _total(after), rounding


def _after(d0, d1, edges, y):
  """Unary and edge costs after switching the pixels `y`, from a move's untruncated terms."""
  out = []
  for axis, (a_, b_, c_, d_) in zip((1, 0), edges):
    yx, yz = _ends(y, axis)
    out.append(jnp.where(yx, jnp.where(yz, d_, c_), jnp.where(yz, b_, a_)))
  return jnp.where(y, d1, d0), out


def _total(current):
  return jnp.sum(current[0]) + sum(jnp.sum(e) for e in current[1])


def move_energy(d0, d1, edges, y):
  """Energy after a move that switches the pixels `y`, from the move's untruncated terms."""
  return _total(_after(d0, d1, edges, y))


@functools.partial(jax.jit, static_argnames=('unary', 'pairwise', 'num_labels', 'sweeps',
                                             'mincut', 'with_rounding'))
def alpha_expansion(unary, pairwise, problem, labels0, num_labels, sweeps=1, order=None,
                    scale=None, num_moves=None, mincut='auto', with_rounding=False):
  """Alpha-expansion from labels0 [H, W] int32. Returns (labels, energy), and with_rounding the
  largest `move_rounding` of the moves it made (each move's cut is float-optimal to within it).

  One sweep tries an expansion move for every label in `order` (default 0..num_labels-1), or
  for its first `num_moves` entries (a traced count: e.g. only the labels that a coarse solution
  uses); up to `sweeps` sweeps, stopping early after a sweep that lowers nothing. Float costs
  become int32 capacities by `scale` (default: chosen per move from its total capacity, see
  _TOTAL_CAPACITY). A move is kept only if it strictly lowers `energy`; pixels already labelled a
  stay a. mincut: the cut back end (`maxflow.MINCUTS`; 'auto': BK on a CPU).
  """
  mincut = maxflow.resolve(mincut)
  order = jnp.arange(num_labels) if order is None else jnp.asarray(order, jnp.int32)
  labels0 = jnp.asarray(labels0, jnp.int32)
  current0 = _current(unary, pairwise, problem, labels0)

  def move(k, carry):  # the costs of the current labelling ride along, updated by each move
    labels, e, current, bound = carry
    a = order[k]
    switch, after, e_new, b = _move(unary, pairwise, problem, labels, a, scale, current, mincut,
                                    with_rounding)
    better = e_new < e
    keep = lambda new, old: jnp.where(better, new, old)
    return (keep(jnp.where(switch, a, labels), labels), keep(e_new, e),
            jax.tree.map(keep, after, current), jnp.maximum(bound, b))

  def sweep(carry):
    labels, e, current, bound, i, _ = carry
    count = order.shape[0] if num_moves is None else jnp.minimum(num_moves, order.shape[0])
    labels, e_new, current, bound = lax.fori_loop(0, count, move, (labels, e, current, bound))
    return labels, e_new, current, bound, i + 1, e_new < e

  e0 = _total(current0)
  carry = (labels0, e0, current0, jnp.zeros_like(e0), 0, jnp.array(True))
  labels, e, _, bound, _, _ = lax.while_loop(lambda c: (c[4] < sweeps) & c[5], sweep, carry)
  return (labels, e, bound) if with_rounding else (labels, e)
