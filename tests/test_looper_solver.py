"""looper.maxflow and looper.expansion against PyMaxflow (Boykov-Kolmogorov) and brute force."""
import itertools

import jax
import jax.numpy as jnp
import maxflow as pymaxflow
import numpy as np
import pytest

from animgen.looper import expansion, maxflow
from animgen.looper.maxflow import grid_mincut

mincut = jax.jit(grid_mincut)


def _random_grid(rng, h, w, kind):
  """(source, sink, right, left, down, up) int32 capacities of one kind of random grid."""
  t_max, e_max = {'uniform': (1000, 300), 'strong': (100, 3000), 'large': (10 ** 6, 10 ** 6),
                  'sparse': (1000, 300)}[kind]
  shapes = [(h, w)] * 2 + [(h, w - 1)] * 2 + [(h - 1, w)] * 2
  caps = [rng.integers(0, m + 1, s) for m, s in zip([t_max] * 2 + [e_max] * 4, shapes)]
  if kind == 'sparse':
    caps = [c * (rng.random(c.shape) < 0.3) for c in caps]
  return [c.astype(np.int32) for c in caps]


def _pymaxflow(source, sink, right, left, down, up):
  """Reference max-flow value with PyMaxflow, grid edges added one by one."""
  h, w = source.shape
  g = pymaxflow.Graph[int]()
  ids = g.add_grid_nodes((h, w))
  g.add_grid_tedges(ids, source, sink)
  for i, j in itertools.product(range(h), range(w)):
    if j + 1 < w:
      g.add_edge(ids[i, j], ids[i, j + 1], int(right[i, j]), int(left[i, j]))
    if i + 1 < h:
      g.add_edge(ids[i, j], ids[i + 1, j], int(down[i, j]), int(up[i, j]))
  return g.maxflow()


def _cut_capacity(side, source, sink, right, left, down, up):
  """Capacity of the s-t cut whose source side is `side`."""
  s, t = side, ~side
  return int(source[t].sum() + sink[s].sum() + right[s[:, :-1] & t[:, 1:]].sum()
             + left[t[:, :-1] & s[:, 1:]].sum() + down[s[:-1] & t[1:]].sum()
             + up[t[:-1] & s[1:]].sum())


GRIDS = [(1, 13, 'uniform'), (1, 13, 'sparse'), (9, 1, 'uniform'), (9, 1, 'large'),
         (6, 7, 'sparse'), (6, 7, 'strong'), (32, 32, 'uniform'), (32, 32, 'strong'),
         (12, 20, 'large'), (12, 20, 'sparse')]


@pytest.mark.parametrize('h,w,kind', GRIDS)
def test_mincut_matches_pymaxflow(h, w, kind):
  caps = _random_grid(np.random.default_rng(h * 100 + w + len(kind)), h, w, kind)
  flow, side = mincut(*caps)
  side = np.asarray(side)
  assert int(flow) == _pymaxflow(*caps) > 0
  assert _cut_capacity(side, *caps) == int(flow)


def test_mincut_source_side_is_what_cannot_reach_the_sink():
  rng = np.random.default_rng(0)
  zeros = [np.zeros_like(c) for c in _random_grid(rng, 6, 7, 'uniform')]
  flow, side = mincut(*zeros)  # nothing reaches the sink: all on the source side
  assert int(flow) == 0 and np.asarray(side).all()
  flow, side = mincut(zeros[0], zeros[1] + 5, *zeros[2:])  # every node has a free sink arc
  assert int(flow) == 0 and not np.asarray(side).any()


def test_bk_back_end_cuts_like_push_relabel_under_jit_and_vmap():
  """maxflow.bk_mincut (PyMaxflow through pure_callback) traced inside jit and vmap: the same
  flow and a minimum cut of the same value as grid_mincut on each graph."""
  rng = np.random.default_rng(7)
  grids = [_random_grid(rng, 9, 11, kind) for kind in ('uniform', 'strong', 'sparse')]
  stacked = [np.stack(c) for c in zip(*grids)]
  flows, sides = jax.jit(jax.vmap(maxflow.bk_mincut))(*stacked)
  want, _ = jax.vmap(grid_mincut)(*stacked)
  np.testing.assert_array_equal(flows, want)
  for k, caps in enumerate(grids):
    assert _cut_capacity(np.asarray(sides[k]), *caps) == int(want[k]) > 0
  assert maxflow.resolve('auto') == ('bk' if jax.default_backend() == 'cpu' else 'push-relabel')
  with pytest.raises(ValueError, match='use one of auto, push-relabel, bk'):
    maxflow.resolve('dinic')


def test_parallel_cuts_in_worker_processes_cut_like_pymaxflow():
  """Inside maxflow.parallel_cuts() the BK callback sends each graph to a worker process (bk.py
  through a pipe): from two threads at once, every graph comes back with PyMaxflow's flow and a
  cut of that capacity, and the context leaves cuts in-process again."""
  import concurrent.futures
  rng = np.random.default_rng(3)
  grids = [_random_grid(rng, h, w, kind) for h, w, kind in GRIDS] * 2
  cut = jax.jit(maxflow.bk_mincut)
  with maxflow.parallel_cuts():
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
      out = list(pool.map(lambda caps: jax.block_until_ready(cut(*caps)), grids))
    assert maxflow._WORKERS and all(w.poll() is None for w in maxflow._WORKERS)
  assert not maxflow._PARALLEL
  for caps, (flow, side) in zip(grids, out):
    assert int(flow) == _pymaxflow(*caps)
    assert _cut_capacity(np.asarray(side), *caps) == int(flow)


def test_mincut_vmap_equals_separate_calls():
  rng = np.random.default_rng(1)
  grids = [_random_grid(rng, 12, 20, kind) for kind in ('uniform', 'strong', 'sparse')]
  flows, sides = jax.vmap(grid_mincut)(*[np.stack(c) for c in zip(*grids)])
  for caps, f, s in zip(grids, flows, sides):
    flow, side = mincut(*caps)
    assert int(f) == int(flow) == _pymaxflow(*caps)
    np.testing.assert_array_equal(s, side)


# A multi-label problem: Potts edges plus a random label-pair table that breaks the triangle
# inequality, so some expansion terms are non-submodular.
def unary_fn(problem, lab):
  return jnp.take_along_axis(problem['unary'], lab[None], 0)[0]


def pairwise_fn(problem, la, lb, axis):
  w = problem['wh'] if axis == 1 else problem['wv']
  return w * (la != lb) + problem['pair'][la, lb]


def _problem(rng, h, w, labels, integer=True, pair_max=30):
  draw = (lambda m, s: rng.integers(0, m + 1, s)) if integer else (lambda m, s: m * rng.random(s))
  pair = draw(pair_max, (labels, labels)) * (1 - np.eye(labels))
  return {'unary': draw(100, (labels, h, w)), 'wh': draw(20, (h, w - 1)),
          'wv': draw(20, (h - 1, w)), 'pair': pair}


def _np_energy(p, lab):
  un = np.take_along_axis(p['unary'], lab[None], 0)[0].sum()
  h = p['wh'] * (lab[:, :-1] != lab[:, 1:]) + p['pair'][lab[:, :-1], lab[:, 1:]]
  v = p['wv'] * (lab[:-1] != lab[1:]) + p['pair'][lab[:-1], lab[1:]]
  return un + h.sum() + v.sum()


def _oracle_expansion(p, lab, num_labels, sweeps):
  """Alpha-expansion on integer costs with PyMaxflow: same label order, same truncation.

  Returns the labels and the energy after every move.
  """
  h, w = lab.shape
  e, energies = _np_energy(p, lab), []
  for _ in range(sweeps):
    for a in range(num_labels):
      g = pymaxflow.Graph[int]()
      ids = g.add_grid_nodes((h, w))
      for i, j in itertools.product(range(h), range(w)):  # y = 1 (take a) is the sink side
        g.add_tedge(ids[i, j], int(p['unary'][a, i, j]), int(p['unary'][lab[i, j], i, j]))
      edges = [(i, j, i, j + 1, p['wh'][i, j]) for i, j in np.ndindex(h, w - 1)]
      edges += [(i, j, i + 1, j, p['wv'][i, j]) for i, j in np.ndindex(h - 1, w)]
      for i, j, k, m, potts in edges:
        v = lambda l1, l2: int(p['pair'][l1, l2] + potts * (l1 != l2))
        A, B, C, D = v(lab[i, j], lab[k, m]), v(lab[i, j], a), v(a, lab[k, m]), v(a, a)
        over = max(A + D - B - C, 0)
        B, C = B + over // 2, C + over - over // 2
        g.add_tedge(ids[i, j], max(C - A, 0), max(A - C, 0))
        g.add_tedge(ids[k, m], max(D - C, 0), max(C - D, 0))
        g.add_edge(ids[i, j], ids[k, m], B + C - A - D, 0)
      g.maxflow()
      new = np.where(g.get_grid_segments(ids), a, lab)
      if _np_energy(p, new) < e:
        lab, e = new, _np_energy(p, new)
      energies.append(e)
  return lab, energies


@pytest.mark.parametrize('mincut', ['push-relabel', 'bk'])
def test_alpha_expansion_matches_pymaxflow_oracle(mincut):
  rng = np.random.default_rng(2)
  L, sweeps = 5, 2
  p = _problem(rng, 12, 12, L)
  lab0 = rng.integers(0, L, (12, 12))
  pj = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), p)
  assert float(expansion.energy(unary_fn, pairwise_fn, pj, lab0)) == _np_energy(p, lab0)
  # The moves really are non-submodular sometimes: A + D > B + C for some label pair.
  pr = p['pair']
  assert any(pr[l1, l2] > pr[l1, a] + pr[a, l2] for l1, l2, a in np.ndindex(L, L, L))
  labels, e = expansion.alpha_expansion(unary_fn, pairwise_fn, pj, lab0, L, sweeps, scale=1.0,
                                        mincut=mincut)
  ref_lab, ref_energies = _oracle_expansion(p, lab0, L, sweeps)
  ref_e = ref_energies[-1]
  assert float(e) == _np_energy(p, np.asarray(labels))
  assert abs(float(e) - ref_e) <= 0.005 * ref_e
  assert ref_e < 0.8 * _np_energy(p, lab0)
  # One move at a time: the energy never goes up, and the moves compose to the full sweeps.
  # Ties between minimum cuts are rare with these costs: here the oracle agrees move by move.
  lab, prev = lab0, _np_energy(p, lab0)
  for a, ref_move in zip(list(range(L)) * sweeps, ref_energies):
    lab, e1 = expansion.alpha_expansion(unary_fn, pairwise_fn, pj, lab, L, 1, order=[a],
                                        scale=1.0, mincut=mincut)
    assert float(e1) <= prev
    assert float(e1) == ref_move
    prev = float(e1)
  np.testing.assert_array_equal(lab, labels)
  # Coarse capacities (scale 0.03) make some cuts worse than the labelling they start from:
  # those moves are refused, so the true energy still never goes up.
  lab, prev = lab0, _np_energy(p, lab0)
  for a in list(range(L)) * sweeps:
    lab, e1 = expansion.alpha_expansion(unary_fn, pairwise_fn, pj, lab, L, 1, order=[a],
                                        scale=0.03, mincut=mincut)
    assert float(e1) == _np_energy(p, np.asarray(lab)) <= prev
    prev = float(e1)
  assert prev < 0.8 * _np_energy(p, lab0)


@pytest.mark.parametrize('mincut', ['push-relabel', 'bk'])
def test_alpha_expansion_vmap_equals_separate_solves(mincut):
  rng = np.random.default_rng(3)
  probs = [_problem(rng, 10, 9, 4, integer=False) for _ in range(3)]
  labs = [rng.integers(0, 4, (10, 9)) for _ in range(3)]
  stacked = jax.tree.map(lambda *a: jnp.asarray(np.stack(a), jnp.float32), *probs)
  solve = lambda p, l: expansion.alpha_expansion(unary_fn, pairwise_fn, p, l, 4, 3,
                                                 mincut=mincut)
  labels, energies = jax.vmap(solve)(stacked, jnp.asarray(np.stack(labs), jnp.int32))
  for k in range(3):
    lab, e = solve(jax.tree.map(lambda a: a[k], stacked), labs[k])
    np.testing.assert_array_equal(labels[k], lab)
    assert float(energies[k]) == float(e)
    assert float(e) < 0.9 * _np_energy(probs[k], labs[k])


def test_two_label_expansion_is_the_global_optimum():
  rng = np.random.default_rng(4)
  h, w = 4, 4
  # Two labels, Potts edges (submodular): one expansion of label 1 from all-0 is exact.
  p = _problem(rng, h, w, 2, integer=False, pair_max=0)
  p['unary'][1] = p['unary'][0] + 20 * rng.standard_normal((h, w))  # close: edges matter
  configs = np.array(list(itertools.product([0, 1], repeat=h * w))).reshape(-1, h, w)
  brute = np.array([_np_energy(p, c) for c in configs])
  pj = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), p)
  labels, e = expansion.alpha_expansion(unary_fn, pairwise_fn, pj, np.zeros((h, w), np.int32),
                                        2, 1, order=[1])
  best = configs[np.argmin(brute)]
  assert 0 < best.sum() < h * w  # a mixed labelling, not a trivial one
  assert (best != p['unary'].argmin(0)).any()  # and the edges change it
  np.testing.assert_array_equal(labels, best)
  np.testing.assert_allclose(float(e), brute.min(), rtol=1e-5)


def test_num_moves_runs_a_prefix_of_the_order():
  rng = np.random.default_rng(5)
  L = 5
  p = _problem(rng, 10, 10, L, integer=False)
  pj = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), p)
  lab0 = jnp.asarray(rng.integers(0, L, (10, 10)), jnp.int32)
  order = jnp.asarray([3, 0, 4, 1, 2], jnp.int32)
  run = lambda **kw: expansion.alpha_expansion(unary_fn, pairwise_fn, pj, lab0, L, 1, **kw)
  lab2, e2 = run(order=order, num_moves=jnp.int32(2))  # a traced count
  want_lab, want_e = run(order=[3, 0])
  np.testing.assert_array_equal(lab2, want_lab)
  assert float(e2) == float(want_e)
  lab5, e5 = run(order=order, num_moves=jnp.int32(5))
  assert float(e5) < float(e2)  # the other labels' moves lower it further: the count mattered
  np.testing.assert_array_equal(lab5, run(order=order)[0])


def _truncated_move_energies(terms, ys):
  """The truncated float energy of one move (B and C raised by halves of A + D - B - C where it
  is positive, as the capacities are built) for every binary switch map in ys [N, H, W]."""
  d0, d1, edges = jax.tree.map(np.asarray, terms)
  out = np.where(ys, d1, d0).sum((1, 2))
  for axis, (a, b, c, d) in zip((1, 0), edges):
    half = np.maximum(a + d - b - c, 0) / 2
    yx, yz = (ys[:, :, :-1], ys[:, :, 1:]) if axis == 1 else (ys[:, :-1], ys[:, 1:])
    v = np.where(yx, np.where(yz, d, c + half), np.where(yz, b + half, a))
    out = out + v.sum((1, 2))
  return out


def test_move_rounding_is_reached_when_rounding_hides_the_better_cut():
  """A 1 x 2 move whose integer capacities tie keeping and switching both pixels, while the
  float energy of switching is 1.96 lower: the cut keeps them (the source side of a tie), and
  that loss is two thirds of move_rounding, so a bound half as large would be wrong."""
  d0, d1 = jnp.full((1, 2), 0.49), jnp.zeros((1, 2))
  right = [jnp.full((1, 1), v) for v in (1.49, 5.0, 5.0, 0.51)]   # A, B, C, D
  down = [jnp.zeros((0, 2))] * 4
  terms = (d0, d1, [right, down])
  side = np.asarray(mincut(*expansion._capacities(*terms, 1.0))[1])
  energies = _truncated_move_energies(terms, np.array([[[0, 0]], [[1, 1]]], bool))
  chosen = _truncated_move_energies(terms, ~side[None])[0]
  gap = chosen - energies.min()
  assert gap == pytest.approx(1.96, abs=1e-5)
  bound = float(expansion.move_rounding(*terms, 1.0))
  assert bound == pytest.approx(2 * (0.49 + 0.49 + 0.49), abs=1e-5)
  assert bound / 2 < gap <= bound


def test_rounding_bound_holds_for_every_move_and_has_teeth():
  """Against brute force over all 512 cuts of 3 x 3 moves: the cut that is optimal on the
  int32 capacities is within expansion.move_rounding (and so within the worst-case
  rounding_bound) of the float-optimal cut, at coarse scales where rounding does cost energy;
  alpha_expansion reports the largest bound it met."""
  h, w, L = 3, 3, 4
  ys = np.array(list(itertools.product([False, True], repeat=h * w))).reshape(-1, h, w)
  ratios, tight_ratios = [], []
  for seed in range(40):
    rng = np.random.default_rng(100 + seed)
    p = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32),
                     _problem(rng, h, w, L, integer=False))
    lab = jnp.asarray(rng.integers(0, L, (h, w)), jnp.int32)
    a = int(rng.integers(0, L))
    terms = expansion._move_terms(unary_fn, pairwise_fn, p, lab, a)
    energies = _truncated_move_energies(terms, ys)
    for scale in (0.02, 0.05, 0.2, 1.0, 10.0):
      side = np.asarray(mincut(*expansion.move_capacities(unary_fn, pairwise_fn, p, lab, a,
                                                          scale))[1])
      chosen = _truncated_move_energies(terms, ~side[None])[0]
      gap = chosen - energies.min()
      bound = expansion.rounding_bound((h, w), scale)
      tight = float(expansion.move_rounding(*terms, scale))
      assert -1e-3 <= gap <= tight + 1e-3, (seed, scale, gap, tight)
      assert tight <= bound * (1 + 1e-5), (seed, scale, tight, bound)
      ratios.append(gap / bound)
      tight_ratios.append(gap / tight)
  # rounding does cost energy here (up to 4 % of the worst-case bound): a bound 1/25 the size
  # would fail the assertion above; the move's own bound is tighter
  assert max(ratios) > 0.02
  assert max(tight_ratios) > 2 * max(ratios)
  p = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), _problem(rng, 8, 6, L, integer=False))
  _, _, reported = expansion.alpha_expansion(unary_fn, pairwise_fn, p,
                                             jnp.zeros((8, 6), jnp.int32), L, 1, scale=0.5,
                                             with_rounding=True)
  assert 0 < float(reported) <= expansion.rounding_bound((8, 6), 0.5)
