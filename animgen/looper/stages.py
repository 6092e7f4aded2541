"""Oh et al. 2017, Algorithm 1: candidate cinemagraphs in three MRF stages (on Liao et al. 2013).

  stage 1  for every period p > 1 (vmapped over batches of periods, `period_batch`): per-pixel
           starts s*_{x|p}
  stage 2  for each candidate object ID (vmapped over candidates): labels {(p, s*_{x|p})} for the
           periods plus {(1, s)} static frames -> per-pixel periods (two sweeps, Oh supp.)
  stage 3  periods fixed: per-pixel starts (one sweep)

Periods and starts are multiples of q = 4 frames and periods are at least `min_period` (Oh supp.:
32). `coarse` > 1 solves stages 1-2 on a frame downscaled by that factor and refines at full size
(stage 2 seeded from the upsampled labels, one sweep over the labels they use, then stage 3).
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from animgen.errors import InputError
from animgen.looper import costs, expansion, maxflow
from animgen.progress import Progress


@dataclasses.dataclass(frozen=True)
class LoopConfig:
  min_period: int = 32      # Oh supp.: minimum period length
  max_period: int = 0       # 0: the clip length
  sweeps_stage2: int = 2    # Oh supp.: two iterations for stage 2, one for the others
  sweeps: int = 1
  coarse: int = 1           # >1: stages 1-2 at 1/coarse resolution, then refine
  period_batch: int = 0     # periods per stage-1 call; 0: automatic (see `period_batch`)
  mincut: str = 'auto'      # cut back end (maxflow.MINCUTS): 'auto' is BK on a CPU
  threads: int = 0          # problems solved at once; 0: automatic (see `solve_threads`)
  params: costs.Params = costs.Params()


@dataclasses.dataclass
class Loop:
  """One solved cinemagraph: per-pixel period and start (int32 [H, W]) and its energy."""
  periods: np.ndarray
  starts: np.ndarray
  energy: float
  name: str = 'all'
  stage1: np.ndarray | None = None  # the shared stage-1 starts [n_p, h, w] at stage-1 size
  rounding: float = 0.0   # stage 3's largest expansion.move_rounding (energy units)


def period_set(num_frames: int, config: LoopConfig) -> np.ndarray:
  """Loop periods: multiples of q from min_period up to the clip length (or max_period)."""
  q = config.params.q
  if config.min_period < 2 or config.min_period % q:
    raise InputError(f'--min-period {config.min_period}: use a multiple of {q} that is at '
                     'least 4')
  if config.max_period and config.max_period < config.min_period:
    raise InputError(f'--max-period {config.max_period} is below --min-period '
                     f'{config.min_period}: give --max-period 0 (the clip length) or at least '
                     f'{config.min_period}')
  top = min(num_frames, config.max_period or num_frames)
  periods = np.arange(config.min_period, top + 1, q)
  if num_frames < 2 * config.min_period or not len(periods):
    raise InputError(f'the video has {num_frames} frames; looping needs at least '
                     f'{2 * config.min_period} (twice --min-period {config.min_period}): give a '
                     'longer clip or a smaller --min-period')
  return periods


def _max_start(p, num_frames, q):
  """Largest start that is a multiple of q with s + p <= T (static: s < T)."""
  room = jnp.where(p > 1, num_frames - p, num_frames - 1)
  return (room // q) * q


def start_tables(p_map, num_labels, num_frames, q):
  """Stage-1/3 label tables: label λ at x is start min(λ q, max start of p_x) ([L, H, W])."""
  lam = jnp.arange(num_labels)[:, None, None] * q
  return jnp.minimum(lam, _max_start(p_map, num_frames, q)[None]).astype(jnp.int32)


def unary_table(problem, P, S, distinct=None):
  """The unary cost of every label at every pixel, [L, H, W]: every move of a sweep reads one
  row of it, and its argmin initialises a stage (Oh supp. step 1). distinct (a traced count):
  the labels from it on repeat label distinct - 1 (stage 1's start tables), so only the first
  `distinct` rows are evaluated."""
  prob = costs.with_labels(problem, P, S)
  row = lambda lam: costs.unary(prob, jnp.full(P.shape[1:], lam, jnp.int32))
  if distinct is None:
    return jax.vmap(row)(jnp.arange(P.shape[0]))
  table = jax.lax.fori_loop(0, distinct, lambda i, t: t.at[i].set(row(i)),
                            jnp.zeros(P.shape, jnp.float32))
  last = (jnp.arange(P.shape[0]) >= distinct)[:, None, None]
  return jnp.where(last, table[distinct - 1], table)


# The solver's cost functions on (problem, unary table) pairs: the unary term is looked up.
def _tabled_unary(tabled, lab):
  return jnp.take_along_axis(tabled[1], lab[None], 0)[0]


def _tabled_pairwise(tabled, la, lb, axis):
  return costs.pairwise(tabled[0], la, lb, axis)


def _tabled_pairwise_loops(tabled, la, lb, axis):
  return costs.pairwise_loops(tabled[0], la, lb, axis)


def _solve(problem, P, S, labels0, sweeps, loops_only=False, used_only=False,
           mincut='auto', with_rounding=False, distinct=None):
  """Alpha-expansion over the label tables P, S from labels0 (-1 or None: the label of lowest
  unary cost there). loops_only: every label loops (`costs.pairwise_loops`). used_only: moves
  only for the labels that labels0 uses (coarse-to-fine refinement: the coarse solution chose
  them); distinct (a traced count): the labels from it on repeat label distinct - 1, so moves
  and unary costs are only for the first `distinct` (stage 1)."""
  prob = costs.with_labels(problem, P, S)
  table = unary_table(problem, P, S, distinct)
  num_moves = distinct
  best = jnp.argmin(table, axis=0).astype(jnp.int32)
  labels0 = best if labels0 is None else jnp.where(labels0 < 0, best, labels0)
  order = None
  if used_only:
    used = jnp.zeros(P.shape[0], bool).at[labels0.ravel()].set(True)
    order, num_moves = jnp.argsort(~used, stable=True).astype(jnp.int32), jnp.sum(used)
  pairwise = _tabled_pairwise_loops if loops_only else _tabled_pairwise
  return expansion.alpha_expansion(_tabled_unary, pairwise, (prob, table), labels0, P.shape[0],
                                   sweeps=sweeps, order=order, num_moves=num_moves,
                                   mincut=mincut, with_rounding=with_rounding)


@functools.partial(jax.jit, static_argnames=('num_frames', 'q', 'sweeps', 'mincut'))
def stage1(problem, periods, *, num_frames, q, sweeps=1, mincut='auto'):
  """Starts s*_{x|p} for every period (vmapped over periods) -> int32 [n_p, H, W]."""
  h, w = problem.gamma_t.shape
  num_labels = int((num_frames - 1) // q + 1)

  def one(p):
    p_map = jnp.full((h, w), p, jnp.int32)
    P = jnp.broadcast_to(p_map, (num_labels, h, w))
    S = start_tables(p_map, num_labels, num_frames, q)
    # labels past the last start s + p <= T repeat it (start_tables): one move per distinct start
    distinct = (num_frames - p) // q + 1
    lab, _ = _solve(problem, P, S, None, sweeps, loops_only=True, mincut=mincut,
                    distinct=distinct)
    return jnp.take_along_axis(S, lab[None], 0)[0]
  if periods.shape[0] == 1:  # not vmapped: the cost terms' branches stay branches
    return one(periods[0])[None]
  return jax.vmap(one)(periods)


def stage2_tables(starts1, periods, num_frames, q):
  """Stage-2 labels: (p, s*_{x|p}) for each period, then (1, s) for each static start."""
  n_p, h, w = starts1.shape
  static = jnp.arange(0, num_frames, q, dtype=jnp.int32)
  P = jnp.concatenate([jnp.broadcast_to(periods[:, None, None], (n_p, h, w)),
                       jnp.ones((len(static), h, w), jnp.int32)]).astype(jnp.int32)
  S = jnp.concatenate([starts1, jnp.broadcast_to(static[:, None, None], (len(static), h, w))])
  return P, S.astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=('sweeps', 'used_only', 'mincut'))
def stage2(problem, P, S, labels0, *, sweeps=2, used_only=False, mincut='auto'):
  """Per-pixel periods with their paired starts -> (period [H, W], start [H, W], energy).
  labels0: from `init_stage2` (None or -1: the label of lowest unary cost)."""
  lab, e = _solve(problem, P, S, labels0, sweeps, used_only=used_only, mincut=mincut)
  pick = lambda t: jnp.take_along_axis(t, lab[None], 0)[0]
  return pick(P), pick(S), e


@functools.partial(jax.jit, static_argnames=('num_frames', 'q', 'sweeps', 'mincut'))
def stage3(problem, p_map, s_map, *, num_frames, q, sweeps=1, mincut='auto'):
  """Starts with the periods fixed -> (start [H, W], energy, rounding): the last stage, so its
  moves' largest `expansion.move_rounding` is the one reported with the loop."""
  num_labels = int((num_frames - 1) // q + 1)
  P = jnp.broadcast_to(p_map, (num_labels,) + p_map.shape).astype(jnp.int32)
  S = start_tables(p_map, num_labels, num_frames, q)
  lab0 = jnp.minimum(s_map // q, num_labels - 1).astype(jnp.int32)
  lab, e, rounding = _solve(problem, P, S, lab0, sweeps, mincut=mincut, with_rounding=True)
  return jnp.take_along_axis(S, lab[None], 0)[0], e, rounding


def init_stage2(P, S, seed_p, seed_s):
  """Stage-2 start labels from an upsampled coarse solution: the label matching it, -1 (the
  lowest unary cost, filled in by `stage2`) where none does."""
  match = (P == seed_p[None]) & ((P > 1) | (S == seed_s[None]))
  return jnp.where(match.any(0), jnp.argmax(match, 0), -1).astype(jnp.int32)


def _upsample(x, h, w):
  """Nearest-neighbour upsampling of label maps [..., h0, w0] to [..., h, w]."""
  ys = (np.arange(h) * x.shape[-2]) // h
  xs = (np.arange(w) * x.shape[-1]) // w
  return x[..., ys[:, None], xs[None, :]]


def _downsample_video(video, factor):
  t, h, w, c = video.shape
  h2, w2 = h // factor, w // factor
  v = video[:, :h2 * factor, :w2 * factor].reshape(t, h2, factor, w2, factor, c)
  return v.mean((2, 4))


def _downsample_map(m, factor):
  if m is None:
    return None
  h2, w2 = m.shape[-2] // factor, m.shape[-1] // factor
  m = m[..., :h2 * factor, :w2 * factor].reshape(m.shape[:-2] + (h2, factor, w2, factor))
  return m.mean((-3, -1)) >= 0.5


def _coarse_factor(config: LoopConfig, h: int, w: int) -> int:
  """The coarse-to-fine factor used: config.coarse while the coarse frame keeps >= 8 px."""
  return config.coarse if config.coarse > 1 and min(h, w) // config.coarse >= 8 else 1


def period_batch(config: LoopConfig, num_periods: int) -> int:
  """Periods solved together in one stage-1 call: config.period_batch, or by default 1 on a CPU
  and all of them on an accelerator. Under vmap a batch runs until its slowest period has
  converged, the cost terms' branches (`costs._sparse`) become selects that evaluate every
  branch, and a CPU runs the batch's problems one after the other anyway, so there one period
  per call is fastest (stage 1 at 256x256x60 on a 2-core CPU: 2.7 s against 4.2 s in pairs,
  bench/README.md) and reports progress per period. An accelerator solves a batch in
  parallel: there all periods go in one call."""
  if config.period_batch > 0:
    return min(config.period_batch, num_periods)
  return 1 if jax.default_backend() == 'cpu' else num_periods


def solve_threads(config: LoopConfig) -> int:
  """Independent problems (stage-1 batches of periods, candidates of stages 2-3) solved at once
  from threads: config.threads, or by default one per CPU core where the cuts are BK's on a CPU
  (each cut then runs in a worker process while another problem computes its costs), else 1
  (an accelerator solves a vmapped batch in parallel)."""
  if config.threads > 0:
    return config.threads
  import os
  cpu = jax.default_backend() == 'cpu' and maxflow.resolve(config.mincut) == 'bk'
  return (os.cpu_count() or 1) if cpu else 1


def _threaded(fn, items, threads):
  """(index, fn(item)) for every item, as each finishes: from `threads` threads with their BK
  cuts in worker processes (`maxflow.parallel_cuts`) when threads > 1, else one after the other
  in order."""
  if threads <= 1 or len(items) <= 1:
    for i, item in enumerate(items):
      yield i, fn(item)
    return
  import concurrent.futures
  with maxflow.parallel_cuts(), concurrent.futures.ThreadPoolExecutor(
      min(threads, len(items))) as pool:
    jobs = {pool.submit(fn, item): i for i, item in enumerate(items)}
    for job in concurrent.futures.as_completed(jobs):
      yield jobs[job], job.result()


def stage1_batched(problem, periods, *, num_frames, q, sweeps=1, batch=None, stage=None,
                   mincut='auto', threads=1):
  """`stage1` over `periods` `batch` at a time (default all at once) -> int32 [n_p, H, W].

  Every batch has the same shape, so it compiles once: the last one repeats its last period.
  The periods are independent problems, so any batch gives the same starts up to ties broken
  by float rounding. threads > 1: that many batches are solved at once from threads, their BK
  cuts in worker processes (`maxflow.parallel_cuts`), so that one batch's cut overlaps the
  other's cost terms. `stage` (a progress.Stage) advances by the periods of each batch."""
  n = len(periods)
  batch = n if not batch else min(batch, n)
  pad = (-n) % batch
  padded = jnp.concatenate([periods, jnp.repeat(periods[-1:], pad)])
  firsts = list(range(0, n + pad, batch))
  solve = lambda i: jax.block_until_ready(stage1(
      problem, padded[i:i + batch], num_frames=num_frames, q=q, sweeps=sweeps, mincut=mincut))
  out, done = {}, 0
  for k, starts in _threaded(solve, firsts, threads if maxflow.resolve(mincut) == 'bk' else 1):
    out[firsts[k]] = starts
    done += min(batch, n - firsts[k])
    if stage is not None:
      stage.advance(min(batch, n - firsts[k]), f'{n - done} left' if done < n else None)
  return jnp.concatenate([out[i] for i in firsts])[:n]


def _build_problems(video, config, semantics, natural, targets, f):
  """The cost problem at full size and, for coarse-to-fine (f > 1), at 1/f size ->
  (full problem, coarse problem or None, coarse target maps or None). Both have no target:
  the candidates' E_static is batched over separately (`_targeted`)."""
  def build(v, sem, nat):
    return costs.build_problem(v, config.params, semantics=sem, natural=nat, target=None)
  small = small_targets = None
  if f > 1:
    small_sem = None if semantics is None else _downsample_video(jnp.asarray(semantics), f)
    small = build(_downsample_video(video, f), small_sem, _downsample_map(natural, f))
    small_targets = _downsample_map(targets, f)
  base = jax.block_until_ready(build(video, semantics, natural))
  return base, small, small_targets


def _targeted(prob, targets):
  """E_static of `prob` for each candidate map [n, H, W]: only E_static differs between the
  candidates (costs.retarget), so only it is batched and the big tables are shared."""
  return jax.vmap(lambda t: costs.retarget(prob, t).e_static)(jnp.asarray(targets))


def _per_target(prob, fn, *batched, threads=1):
  """fn(prob with one candidate's E_static, *that candidate's arrays) for every candidate,
  stacked: vmapped over the candidates when threads == 1, else each candidate on its own from
  `threads` threads with their BK cuts in worker processes (as stage 1's periods; there the cost
  terms' branches stay branches). One candidate is called directly."""
  one = lambda i: fn(prob.replace(e_static=batched[0][i]), *(b[i] for b in batched[1:]))
  n = len(batched[0])
  if n > 1 and threads == 1:
    return jax.vmap(lambda e, *b: fn(prob.replace(e_static=e), *b))(*batched)
  if n == 1:
    return jax.tree.map(lambda x: jnp.asarray(x)[None], one(0))
  out = dict(_threaded(lambda i: jax.block_until_ready(one(i)), range(n), threads))
  return jax.tree.map(lambda *xs: jnp.stack(xs), *(out[i] for i in range(n)))


def _stage2_coarse(small, small_targets, starts1, periods, config, t, h, w):
  """Stage 2 on the coarse problem, upsampled to h x w -> (starts1, seed periods, seed starts)
  at full size: the labelling that `_stage2_full` refines."""
  q = config.params.q
  P, S = stage2_tables(starts1, periods, t, q)
  e_small = _targeted(small, small_targets)
  p_s, s_s, _ = _per_target(small, lambda pr: stage2(
      pr, P, S, None, sweeps=config.sweeps_stage2, mincut=config.mincut), e_small,
      threads=solve_threads(config))
  return _upsample(starts1, h, w), _upsample(p_s, h, w), _upsample(s_s, h, w)


def _stage2_full(base, targets, starts1, periods, config, t, seed=None):
  """Stage 2 at full size for every candidate -> (periods, starts, E_static), each batched
  over the candidates. seed: the upsampled coarse (periods, starts) to refine with one sweep
  over the labels they use, or None for the full two-sweep solve."""
  P, S = stage2_tables(starts1, periods, t, config.params.q)
  e_full = _targeted(base, targets)
  if seed is not None:
    lab0 = jax.vmap(lambda sp, ss: init_stage2(P, S, sp, ss))(*seed)
    sweeps = config.sweeps
  else:
    lab0 = jnp.full((len(targets),) + P.shape[1:], -1, jnp.int32)
    sweeps = config.sweeps_stage2
  p_map, s_map, _ = _per_target(base, lambda pr, l0: stage2(
      pr, P, S, l0, sweeps=sweeps, used_only=seed is not None, mincut=config.mincut), e_full,
      lab0, threads=solve_threads(config))
  return jax.block_until_ready(p_map), s_map, e_full


def _stage3_all(base, e_full, p_map, s_map, config, t):
  """Stage 3 for every candidate -> (starts, energies, rounding bounds)."""
  # stage 3 sweeps over every start label even after a coarse solve: restricting it to the
  # starts the upsampled solution uses cost 2 % energy on the benchmark clip (docs/looper.md)
  s_map, energy, rounding = _per_target(base, lambda pr, pm, sm: stage3(
      pr, pm, sm, num_frames=t, q=config.params.q, sweeps=config.sweeps, mincut=config.mincut),
      e_full, p_map, s_map, threads=solve_threads(config))
  return s_map, jax.block_until_ready(energy), rounding


def solve(video, config: LoopConfig, semantics=None, natural=None, targets=None,
          names=None, progress=None, starts1=None) -> list[Loop]:
  """Candidate loops of `video` [T, H, W, 3] in [0, 1], one per target map (Oh Alg. 1).

  semantics: responses F [T, H, W, K] or None; natural: bool [H, W] union of natural-class maps;
  targets: bool [n, H, W] candidate maps pi_ID (None: one loop with Liao's static term
  everywhere). Stage 1 is shared by all candidates; stages 2-3 are vmapped over them.
  progress: an animgen.progress.Progress (a bar per stage), a callable that receives one line
  per finished stage ('costs: 0.1 s', 'stage 1 (7 periods): 2.0 s', 'stage 2 (...): ...',
  'stage 3: ...'), or None. starts1: the stage-1 starts of an earlier solve of the same video
  and config (`Loop.stage1`): stage 1 is skipped (editing a candidate map with a mask).
  """
  prog = Progress.wrap(progress)
  video = jnp.asarray(video, jnp.float32)
  t, h, w, _ = video.shape
  periods = jnp.asarray(period_set(t, config), jnp.int32)
  targets = np.ones((1, h, w), bool) if targets is None else np.asarray(targets, bool)
  names = list(names or [f'candidate {i}' for i in range(len(targets))])
  f = _coarse_factor(config, h, w)
  with prog.stage('costs'):
    base, small, small_targets = _build_problems(video, config, semantics, natural, targets, f)
  n_p = len(periods)
  solved_at = (n_p,) + ((h // f, w // f) if f > 1 else (h, w))
  if starts1 is not None:
    starts1 = np.asarray(starts1)
    if starts1.shape != solved_at:
      raise InputError(f'the cached stage 1 is {starts1.shape} (periods, height, width) but this '
                       f'solve needs {solved_at}: re-run without it on the same clip and options')
    starts1 = jnp.asarray(starts1, jnp.int32)
    prog.say('stage 1: reused')
  else:
    with prog.stage(f'stage 1 ({n_p} periods)', n_p, 'periods', f'p = {int(periods[0])}') as st:
      starts1 = stage1_batched(small if f > 1 else base, periods, num_frames=t,
                               q=config.params.q, sweeps=config.sweeps,
                               batch=period_batch(config, n_p), stage=st, mincut=config.mincut,
                               threads=solve_threads(config))
  cache = np.asarray(starts1)
  num_labels = n_p + len(range(0, t, config.params.q))
  seed = None
  with prog.stage(f'stage 2 ({len(targets)} candidate(s), {num_labels} labels)',
                  2 if f > 1 else 1, 'solves', f'at 1/{f} size' if f > 1 else None) as st:
    if f > 1:
      starts1, *seed = _stage2_coarse(small, small_targets, starts1, periods, config, t, h, w)
      st.advance(item='refining at full size')
    p_map, s_map, e_full = _stage2_full(base, targets, starts1, periods, config, t, seed)
    st.advance()
  with prog.stage('stage 3'):
    s_map, energy, rounding = _stage3_all(base, e_full, p_map, s_map, config, t)
  p_map, s_map, energy, rounding = map(np.asarray, (p_map, s_map, energy, rounding))
  return [Loop(p_map[i], s_map[i], float(energy[i]), names[i], cache, float(rounding[i]))
          for i in range(len(targets))]


def solve_videos(videos, config: LoopConfig, semantics=None, natural=None,
                 targets=None) -> list[Loop]:
  """One loop per video, all videos solved together: the whole pipeline (costs, stages 1-3) is
  vmapped over a batch of videos of the same shape [N, T, H, W, 3] in [0, 1].

  semantics [N, T, H, W, K], natural bool [N, H, W] and targets bool [N, H, W] (one candidate
  map per video) are optional, as in `solve`. Equal to solving each video alone with `solve`
  (tested); coarse-to-fine is not batched (use `solve` for `config.coarse` > 1).
  """
  videos = jnp.asarray(videos, jnp.float32)
  if videos.ndim != 5:
    raise InputError(f'solve_videos needs videos [N, T, H, W, 3], got shape {videos.shape}')
  if config.coarse > 1:
    raise InputError('solve_videos does not batch coarse-to-fine: use solve() per video')
  n, t, h, w, _ = videos.shape
  q = config.params.q
  periods = jnp.asarray(period_set(t, config), jnp.int32)
  natural = jnp.zeros((n, h, w), bool) if natural is None else jnp.asarray(natural, bool)
  targets = jnp.ones((n, h, w), bool) if targets is None else jnp.asarray(targets, bool)

  def one(video, sem, nat, tgt):
    prob = costs.build_problem(video, config.params, semantics=sem, natural=nat, target=tgt)
    cut = config.mincut
    starts1 = stage1(prob, periods, num_frames=t, q=q, sweeps=config.sweeps, mincut=cut)
    P, S = stage2_tables(starts1, periods, t, q)
    p_map, s_map, _ = stage2(prob, P, S, None, sweeps=config.sweeps_stage2,
                             mincut=cut)
    s_map, energy, rounding = stage3(prob, p_map, s_map, num_frames=t, q=q,
                                     sweeps=config.sweeps, mincut=cut)
    return p_map, s_map, energy, rounding

  if semantics is None:
    out = jax.jit(jax.vmap(lambda v, a, b: one(v, None, a, b)))(videos, natural, targets)
  else:
    out = jax.jit(jax.vmap(one))(videos, jnp.asarray(semantics, jnp.float32), natural, targets)
  p_map, s_map, energy, rounding = map(np.asarray, out)
  return [Loop(p_map[i], s_map[i], float(energy[i]), f'video {i}', rounding=float(rounding[i]))
          for i in range(n)]
