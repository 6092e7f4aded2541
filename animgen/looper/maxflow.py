"""Exact s-t minimum cut on a 4-connected grid, by two back ends with one interface.

`grid_mincut`: Goldberg & Tarjan (1988) push-relabel, run synchronously on every pixel at once as
in the GPU grid-cut solvers (Vineet & Narayanan 2008), with periodic global relabelling
(Cherkassky & Goldberg 1997). Only the first phase is run (a maximum preflow): it already gives
the flow value and the cut. All arithmetic is int32 and it runs until no active node is left (no
iteration cap, so it never stops on an inexact cut), so the result is exact; jit-compatible and
vmappable: the solver of accelerators and vmapped batches.

`bk_mincut`: the same cut by PyMaxflow (Boykov-Kolmogorov, a serial augmenting-path solver that
is several times faster on a CPU), called from inside jitted code through `jax.pure_callback`;
inside `parallel_cuts()` each cut runs in a worker process (`bk.py`), so that solves running in
several threads cut side by side.

`resolve` picks one: 'auto' is BK on a CPU back end (when PyMaxflow imports) and push-relabel
elsewhere.
"""
import atexit
import contextlib
import queue
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from animgen.looper import bk

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


host_mincut = bk.host_mincut


def _bk_host(source, sink, right, left, down, up):
  """Host side of `bk_mincut`: numpy arrays in, (int32 flow, bool source side) out; inside
  `parallel_cuts()` in a worker process, so that cuts of concurrent solves run side by side
  (PyMaxflow holds the GIL)."""
  if not _PARALLEL:
    return bk.cut(source, sink, right, left, down, up)
  try:
    worker = _IDLE.get_nowait()
  except queue.Empty:   # a new worker running bk.py, which imports numpy and PyMaxflow only
    # (run_path: bk.py's folder, which holds this maxflow.py, stays off the worker's sys.path)
    run = 'import runpy, sys; runpy.run_path(sys.argv[1], run_name="__main__")'
    worker = subprocess.Popen([sys.executable, '-c', run, bk.__file__], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
    _WORKERS.append(worker)
  try:
    bk.send(worker.stdin, source, sink, right, left, down, up)
    return bk.receive(worker.stdout, *np.shape(source))
  finally:
    _IDLE.put(worker)


_PARALLEL = 0     # open `parallel_cuts` contexts
_IDLE = queue.SimpleQueue()   # worker processes waiting for a graph
_WORKERS = []


@atexit.register
def _stop_workers():
  for worker in _WORKERS:
    try:
      worker.stdin.close()   # its read ends: it returns
      worker.wait(timeout=10)
    except (OSError, subprocess.TimeoutExpired):
      worker.kill()


@contextlib.contextmanager
def parallel_cuts():
  """BK cuts made in this context (from any thread) run in worker processes, one per cut in
  flight, started on first use and kept for later contexts: for solves that run concurrently
  in threads (stage-1 periods and candidates on a CPU, `stages._threaded`), whose cuts would
  otherwise take turns on the GIL."""
  global _PARALLEL
  _PARALLEL += 1
  try:
    yield
  finally:
    _PARALLEL -= 1


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
