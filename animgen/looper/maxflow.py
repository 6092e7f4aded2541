"""Exact s-t minimum cut on a 4-connected grid, by two back ends with one interface.

`grid_mincut`: Goldberg & Tarjan (1988) push-relabel, run synchronously on every pixel at once as
in the GPU grid-cut solvers (Vineet & Narayanan 2008), with periodic global relabelling
(Cherkassky & Goldberg 1997). Only the first phase is run (a maximum preflow): it already gives
the flow value and the cut. All arithmetic is int32 and it runs until no active node is left (no
iteration cap, so it never stops on an inexact cut), so the result is exact; jit-compatible and
vmappable: the solver of accelerators and vmapped batches.

`bk_mincut`: the same cut by PyMaxflow (Boykov-Kolmogorov, a serial augmenting-path solver that
is several times faster on a CPU), called from inside jitted code through `jax.pure_callback`.

`resolve` picks one: 'auto' is BK on a CPU back end (when PyMaxflow imports) and push-relabel
elsewhere.
"""
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

MINCUTS = ('auto', 'push-relabel', 'bk')


def _shift(a, di, dj, fill):
  """b[i, j] = a[i + di, j + dj], `fill` outside the grid."""
  h, w = a.shape
  pi, pj = abs(di), abs(dj)
  p = jnp.pad(a, ((pi, pi), (pj, pj)), constant_values=fill)
  return p[pi + di:pi + di + h, pj + dj:pj + dj + w]


# Neighbour offsets of the four residual arrays (right, left, down, up), in push order.
_DIRS = ((0, 1), (0, -1), (1, 0), (-1, 0))


def _relabel_all(d, rt, rs, inf):
  """Per node: min over residual arcs of (neighbour label + 1); 1 for a residual sink arc."""
  new = jnp.where(rt > 0, 1, inf)
  for (di, dj), r in zip(_DIRS, rs):
    new = jnp.minimum(new, jnp.where(r > 0, _shift(d, di, dj, inf) + 1, inf))
  return jnp.minimum(new, inf)


def _global_relabel(rt, rs, inf, steps_per_check=8):
  """Exact residual distance of every node to the sink (inf if it cannot reach it).

  Breadth-first search from the sink written as repeated parallel relaxation of all nodes.
  """
  def relax(_, d):
    return jnp.minimum(d, _relabel_all(d, rt, rs, inf))

  def body(carry):
    d, _ = carry
    new = lax.fori_loop(0, steps_per_check, relax, d)
    return new, jnp.any(new != d)

  d0 = jnp.where(rt > 0, 1, inf)
  return lax.while_loop(lambda c: c[1], body, (d0, jnp.array(True)))[0]


def _push_relabel(state, inf):
  """One synchronous step: every active node pushes to its admissible arcs, then relabels.

  Labels are fixed during the push, so two nodes never push to each other (an admissible arc
  goes one label down); relabelling all at once from the old labels keeps them valid.
  """
  e, d, rt, rs = state
  active = (e > 0) & (d < inf)
  # Sink arc first, then right, left, down, up: each takes what the previous ones left.
  push_t = jnp.where(active & (d == 1), jnp.minimum(e, rt), 0)
  rest = e - push_t
  pushes = []
  for (di, dj), r in zip(_DIRS, rs):
    p = jnp.where(active & (d == _shift(d, di, dj, inf) + 1), jnp.minimum(rest, r), 0)
    rest = rest - p
    pushes.append(p)
  # A push along x -> y lowers r(x, y) and raises r(y, x) and y's excess by the same amount.
  new_rs = []
  e = rest
  for k, ((di, dj), r) in enumerate(zip(_DIRS, rs)):
    back = _shift(pushes[k ^ 1], di, dj, 0)  # what the neighbour in this direction sent here
    new_rs.append(r - pushes[k] + back)
    e = e + back
  rt = rt - push_t
  d = jnp.where((e > 0) & (d < inf), _relabel_all(d, rt, new_rs, inf), d)
  return e, d, rt, tuple(new_rs)


def grid_mincut(source, sink, right, left, down, up, block=32):
  """Maximum flow and a minimum cut of a 4-connected H x W grid graph.

  source, sink: int32 [H, W] capacities s -> x and x -> t. right / left: [H, W-1] capacities
  (i, j) -> (i, j+1) and back; down / up: [H-1, W] capacities (i, j) -> (i+1, j) and back.
  All capacities must be >= 0 and their total must fit in int32.

  Returns (flow, source_side): the int32 maximum flow value and a bool [H, W] minimum cut whose
  source side is the set of nodes that cannot reach the sink in the final residual graph (the
  largest source side among all minimum cuts). Runs `block` push/relabel steps between global
  relabels until no node with excess can reach the sink (the preflow phase always terminates).
  """
  h, w = source.shape
  inf = h * w + 1  # a path to the sink has at most h * w arcs
  i32 = lambda a: jnp.asarray(a, jnp.int32)
  source, sink = i32(source), i32(sink)
  # Flow min(s, t) straight through each node first: same cut, and each node keeps one terminal.
  through = jnp.minimum(source, sink)
  e, rt = source - through, sink - through
  zc, zr = jnp.zeros((h, 1), jnp.int32), jnp.zeros((1, w), jnp.int32)
  rs = (jnp.concatenate([i32(right), zc], 1), jnp.concatenate([zc, i32(left)], 1),
        jnp.concatenate([i32(down), zr], 0), jnp.concatenate([zr, i32(up)], 0))

  def cond(c):
    e, d, _, _ = c
    return jnp.any((e > 0) & (d < inf))

  def body(c):
    e, d, rt, rs = c
    e, d, rt, rs = lax.fori_loop(0, block, lambda _, s: _push_relabel(s, inf), (e, d, rt, rs))
    return e, _global_relabel(rt, rs, inf), rt, rs

  d = _global_relabel(rt, rs, inf)
  e, d, rt, _ = lax.while_loop(cond, body, (e, d, rt, rs))
  # Preflow value = what reached the sink; the cut separates nodes that can still reach it.
  flow = jnp.sum(through) + jnp.sum(sink - through - rt)
  return flow, d >= inf


def host_mincut(source, sink, right, left, down, up):
  """(flow, source_side [H, W] bool) of a grid graph by PyMaxflow (exact, int capacities)."""
  import maxflow as pymaxflow
  source, sink = np.asarray(source), np.asarray(sink)
  h, w = source.shape
  g = pymaxflow.Graph[int](h * w, 2 * h * w)   # nodes and edges reserved: no regrowth
  ids = g.add_grid_nodes((h, w))
  g.add_grid_tedges(ids, source, sink)
  for fwd, bwd, axis in ((right, left, 1), (down, up, 0)):
    fwd, bwd = np.asarray(fwd), np.asarray(bwd)
    if not fwd.size:
      continue
    first = (slice(None), slice(0, w - 1)) if axis else (slice(0, h - 1), slice(None))
    step = np.zeros((3, 3), np.int64)
    step[1 + (1 - axis), 1 + axis] = 1                 # x -> its right (axis 1) / down neighbour
    cap = np.zeros((h, w), np.int64)
    cap[first] = fwd
    if np.any(bwd):   # expansion moves put every edge weight forward: their reverse arcs are 0
      # add_grid_edges takes one weight per edge: the reverse arcs go in from the neighbour's side
      back = np.zeros((h, w), np.int64)
      back[(slice(None), slice(1, w)) if axis else (slice(1, h), slice(None))] = bwd
      g.add_grid_edges(ids, weights=back, structure=step[::-1, ::-1], symmetric=False)
    g.add_grid_edges(ids, weights=cap, structure=step, symmetric=False)
  flow = g.maxflow()
  return int(flow), ~g.get_grid_segments(ids)


def _bk_host(source, sink, right, left, down, up):
  """Host side of `bk_mincut`: numpy arrays in, (int32 flow, bool source side) out."""
  flow, side = host_mincut(source, sink, right, left, down, up)
  return np.int32(flow), np.asarray(side, bool)


def bk_mincut(source, sink, right, left, down, up):
  """`grid_mincut` by PyMaxflow on the host; traceable, and vmapped one graph at a time. The
  source side is the one PyMaxflow reports (another minimum cut than push-relabel's may be
  chosen where several exist)."""
  h, w = jnp.shape(source)
  out = (jax.ShapeDtypeStruct((), jnp.int32), jax.ShapeDtypeStruct((h, w), jnp.bool_))
  args = [jnp.asarray(a, jnp.int32) for a in (source, sink, right, left, down, up)]
  return jax.pure_callback(_bk_host, out, *args, vmap_method='sequential')


def resolve(name: str) -> str:
  """'push-relabel' or 'bk' for a MINCUTS name; 'auto' is BK on a CPU back end when PyMaxflow
  imports (exact either way: both give a minimum cut of the same graph)."""
  if name not in MINCUTS:
    raise ValueError(f'mincut {name!r}: use one of {", ".join(MINCUTS)}')
  if name != 'auto':
    return name
  import importlib.util
  if importlib.util.find_spec('maxflow') is None:  # PyMaxflow
    return 'push-relabel'
  return 'bk' if jax.default_backend() == 'cpu' else 'push-relabel'


def mincut_fn(name: str):
  """The cut function of a resolved back end name."""
  return {'push-relabel': grid_mincut, 'bk': bk_mincut}[resolve(name)]
