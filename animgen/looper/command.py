"""`animgen loop VIDEO -o OUT`: video -> seamless loop / cinemagraph (Liao 2013 + Oh 2017).

Semantics come from `--segmenter MODEL` (ONNX, TFLite or `person`, run on every frame,
`segmenter.py`) or `--segmentation FILE.npz` (per-frame class responses or labels of any
segmenter); PASCAL-Context's 60 and ADE20K's 150 classes are merged into Oh's 32. Without
either they come from the
unsupervised motion/colour fallback of `semantics.motion_candidates`: its regions are the
candidate maps, their one-hot responses the semantics F of the energy, and they count as
natural (`FALLBACK_NATURAL`).
"""
import dataclasses
import os
import time

import numpy as np

from animgen import validate
from animgen.errors import InputError
from animgen.validate import Float, Int

DEFAULT_MAX_SIZE = 960      # Oh Sec. 5: at most 960x540 ...
DEFAULT_MAX_SECONDS = 5.0   # ... and at most 5 s
# Peak memory of a solve per pixel-frame: 19.24 GiB at 960x540x90 (bench/README.md, the
# paper's frame size); the cost tables at full size dominate it
BYTES_PER_PIXEL_FRAME = 440
# Without a segmenter the moving regions count as natural classes (ours: what loops in a
# cinemagraph is mostly water, trees, sky, fire; a person is protected with a segmenter)
FALLBACK_NATURAL = True


def _stem(path):
  stem, ext = os.path.splitext(path.rstrip('/'))
  return stem, ext


def _suffixed(path, suffix, ext=None):
  stem, own = _stem(path)
  return f'{stem}_{suffix}{own if ext is None else ext}'


def _slug(name):
  return ''.join(c if c.isalnum() else '-' for c in name.lower()).strip('-') or 'candidate'


def read_clip(path, max_size, max_seconds, start, frames):
  """The clip as float [T, H, W, 3] and fps: trimmed and downscaled to the limits."""
  from animgen import media
  from animgen.ops import warp
  video, fps = media.read_video(path)
  if start:
    video = video[int(round(start * fps)):]
  limit = frames or (int(round(max_seconds * fps)) if max_seconds else None)
  if limit:
    video = video[:limit]
  if len(video) < 2:
    raise InputError(f'{path}: {len(video)} frame(s) after trimming; a loop needs a video, not '
                     'a still image')
  return warp.shrink(video, max_size, min_side=8), fps


def class_responses(video, args, say):
  """(F [T, H, W, C], class names) of --segmenter (run here) or --segmentation (read), merged
  into Oh's 32 classes where they are PASCAL-Context's or ADE20K's; None without either."""
  from animgen.looper import semantics
  t, h, w, _ = video.shape
  if args.segmenter == 'person':
    return person_and_motion(video, args, say)
  if args.segmenter:
    from animgen.looper import segmenter
    return segmenter.model_responses(args.segmenter, video, args.segmenter_classes,
                                     args.segmenter_norm, say)
  if args.segmentation:
    return semantics.to_oh_classes(*semantics.load_responses(args.segmentation, t, h, w))
  return None


def person_and_motion(video, args, say):
  """`--segmenter person`: the motion fallback's regions (natural) with the person masks of
  mediapipe's selfie segmentation carved out as a non-natural 'person' class -> (F [T, H, W,
  K' + 2], ['background', 'region 1', ..., 'person'])."""
  from animgen.looper import segmenter, semantics
  F, _ = segmenter.model_responses(segmenter.person_model(), video, None, 'unit', say)
  person = np.asarray(F)[..., 1:]
  _, regions = semantics.motion_candidates(video, K=args.top_k)   # one-hot, background last
  regions = np.asarray(regions) * (1 - person)
  names = ['background'] + [f'region {i + 1}' for i in range(regions.shape[-1] - 1)] + ['person']
  return np.concatenate([regions[..., -1:], regions[..., :-1], person], -1), names


def candidates(video, args, say, responses=None):
  """-> (semantics F or None, natural [H, W], targets [n, H, W], names); `responses` are
  `class_responses(video, args, say)`, computed here when not given."""
  from animgen.looper import semantics
  t, h, w, _ = video.shape
  if responses is None:
    responses = class_responses(video, args, say)
  if responses is not None:
    F, classes = responses
    idx = semantics.select_candidates(F, video, classes, K=args.top_k)
    given = args.segmenter or args.segmentation
    if not idx:
      raise InputError(f'{given}: no dynamic object class found (all classes are static, '
                       'barely changing or tiny); try without it (motion fallback)')
    maps = semantics.candidate_maps(F, idx)
    F = semantics.topk_responses(F, idx)
    names = [classes[i] for i in idx]
    natural = semantics.natural_union(maps, names)
    regions = np.array([n.startswith('region ') for n in names])  # --segmenter person
    if FALLBACK_NATURAL and regions.any():
      natural = natural | np.asarray(maps)[regions].any(0)
    source = f'segmentation {os.path.basename(given)}: ' + ', '.join(names)
  else:
    # the fallback's one-hot region responses are the semantics (Phi_F, Psi_F and the semantic
    # gamma_s act on them), and its regions count as natural (FALLBACK_NATURAL, docs/looper.md)
    maps, F = semantics.motion_candidates(video, K=args.top_k)
    maps = np.asarray(maps, bool)
    natural = maps.any(0) if FALLBACK_NATURAL else np.zeros((h, w), bool)
    F = F if len(maps) else None  # nothing moves: Liao's energy, no semantic channel to use
    names = [f'region {i + 1}' for i in range(len(maps))]
    source = f'motion fallback: {len(maps)} region(s)'
  maps = np.asarray(maps, bool)
  if len(maps) > 1 and args.candidates > 1:  # Oh Sec. 3.3: combinations of objects as well
    maps, names = combinations(maps, names)
  say(source)
  return F, natural, maps, names


def combinations(maps, names):
  """Candidate IDs of Oh Sec. 3.3: each object, each pair of objects and (from three objects
  on) all of them together -> (maps [n, H, W], names such as 'tree+water' and 'all')."""
  import itertools
  maps, names = list(maps), list(names)
  k = len(maps)
  for i, j in itertools.combinations(range(k), 2):
    if k > 2:
      maps.append(maps[i] | maps[j])
      names.append(f'{names[i]}+{names[j]}')
  maps.append(np.any(maps[:k], axis=0))
  names.append('all')
  return np.asarray(maps, bool), names


def auto_coarse(h, w):
  """`--coarse 0` (asked for; the default is 1, the exact full-size solve): full size while the
  shorter side is under 256 px; beyond, the largest power of two that keeps the coarse frame's
  shorter side at least 64 px (256x256 -> 4, 960x540 -> 8)."""
  short, f = min(h, w), 1
  if short < 256:
    return 1
  while short // (2 * f) >= 64:
    f *= 2
  return f


def _check_args(args):
  """Every argument error before any work starts."""
  from animgen import media
  who = [a for a in (args.user, args.user_ratings) if a]
  if bool(args.prefs) != bool(who) or len(who) > 1:
    raise InputError('--prefs goes with one of --user or --user-ratings: --prefs MODEL.npz '
                     '(animgen prefs fit) --user ID (a panel user) or --user-ratings FILE.csv '
                     '(a new user\'s ratings of panel cinemagraphs) ranks the candidates')
  if args.prefs:
    from animgen.preference import command as prefs
    prefs.resolve_user(prefs.load_model(args.prefs), args.user, args.user_ratings, args.prefs)
  for out in args.output:
    media.check_output(out)
  ins = [('VIDEO', args.video), ('--segmentation', args.segmentation), ('--mask', args.mask),
         ('--reuse-stage1', args.reuse_stage1), ('--prefs', args.prefs),
         ('--user-ratings', args.user_ratings)]
  outs = [('-o', o) for o in args.output] + [
      ('-o', _suffixed(args.output[0], 'labels', '.png')), ('--labels-out', args.labels_out)]
  if args.candidates > 1:
    outs.append(('-o', _suffixed(args.output[0], 'candidates', '.json')))
  media.check_distinct(ins, outs)
  if args.labels_out:
    media.check_data_output(args.labels_out, '--labels-out', '.npz')
  if args.segmentation and args.segmenter:
    raise InputError('--segmentation and --segmenter both give the semantics: use one')
  if args.segmenter_classes and not args.segmenter:
    raise InputError('--segmenter-classes names the classes of --segmenter: give the model too')
  if args.segmenter:
    from animgen.looper import segmenter
    segmenter.check(args.segmenter, args.segmenter_classes, args.segmenter_norm)


def _read_mask(path, h, w):
  """The --mask image as bool [h, w] (resized to the clip when its size differs)."""
  from animgen import media
  mask = media.read_image(path).mean(-1)
  if mask.shape != (h, w):
    from PIL import Image
    mask = np.asarray(Image.fromarray((mask * 255).astype(np.uint8)).resize((w, h))) / 255.0
  if not (mask > 0.5).any():
    raise InputError(f'--mask {path} is all black: paint the region that may loop white')
  return mask > 0.5


def _read_stage1(path, period_list):
  """The stage-1 starts cached by --labels-out, checked against this solve's periods."""
  from animgen.preference import panel
  arrays = panel.read_npz(path, 'labels') if os.path.isfile(path) else None
  if arrays is None:
    raise InputError(f'--reuse-stage1 {path}: not found; write it with --labels-out first')
  if 'stage1_starts' not in arrays or 'stage1_periods' not in arrays:
    raise InputError(f'--reuse-stage1 {path}: no stage1_starts in it; write it with '
                     '--labels-out of animgen loop')
  if not np.array_equal(arrays['stage1_periods'], period_list):
    raise InputError(f'--reuse-stage1 {path}: solved for other periods; use the same clip, '
                     '--frames/--max-seconds and --min-period/--max-period as that run')
  return arrays['stage1_starts']


def _loop_config(args, num_frames, coarse):
  """The solver settings from the arguments (clip-length errors here, before any work)."""
  from animgen.looper import costs, stages
  params = costs.Params(p_short=args.p_short)
  if args.mask:  # Oh supp.: a user mask doubles alpha_sta
    params = dataclasses.replace(params, alpha_sta=2 * params.alpha_sta)
  config = stages.LoopConfig(min_period=args.min_period, max_period=args.max_period,
                             coarse=coarse, params=params, mincut=args.mincut)
  stages.period_set(num_frames, config)
  return config


def _targets(args, video, mask, responses, prog):
  """-> (semantics F, natural map, candidate maps, names): the user mask, all candidates
  together, or (--candidates > 1) each candidate and all together."""
  with prog.stage('candidate regions'):
    F, natural, maps, names = candidates(video, args, prog.say, responses)
  if mask is not None:
    return F, natural, mask[None], ['mask']
  if args.candidates <= 1 or not len(maps):  # no candidate region: one loop, as without K
    return F, natural, maps.any(0, keepdims=True), ['all']
  return F, natural, maps, names


def _write_loop(args, video, fps, loop, n_out, targets, prog):
  """Renders one loop and writes it to every path in `targets`, with its label-map figure next
  to the first; returns the paths written."""
  from animgen import media
  from animgen.looper import render
  blend = 'none' if args.no_blend else args.blend
  frames = render.render(video, loop.periods, loop.starts, n_out, blend=blend != 'none',
                         method='frames' if blend == 'none' else blend)
  for out in targets:
    media.write_video(out, frames, fps=fps)
  seam, neighbours = render.loop_seam(frames)
  looping = float((loop.periods > 1).mean())
  maps_out = _suffixed(targets[0], 'labels', '.png')
  render.label_figure(maps_out, loop.periods, loop.starts,
                      f'{os.path.basename(args.video.rstrip("/"))}: {loop.name}, '
                      f'{looping:.0%} of pixels loop, energy {loop.energy:.4g}')
  prog.say(f'{loop.name}: {looping:.0%} of pixels loop, energy {loop.energy:.4g}, '
           f'seam {seam:.4f} (neighbouring frames {neighbours:.4f})')
  return list(targets) + [maps_out]


def _write_loops(args, video, fps, loops, order, n_out, prog):
  """The best loop (order[0]) to the outputs and, with --candidates N > 1, the next N - 1 loops
  in `order` to the outputs suffixed with their names; returns (paths written, the outputs of
  each loop index)."""
  picked = order[:max(args.candidates, 1)]
  jobs = [(loops[order[0]], args.output)] + [
      (loops[i], [_suffixed(o, _slug(loops[i].name)) for o in args.output]) for i in picked[1:]]
  outputs = {i: list(targets) for i, (_, targets) in zip(picked, jobs)}
  written = []
  with prog.stage(f'render ({len(jobs)} loop(s) of {n_out} frames)', len(jobs), 'loops',
                  jobs[0][0].name) as st:
    for k, (loop, targets) in enumerate(jobs):
      written += _write_loop(args, video, fps, loop, n_out, targets, prog)
      st.advance(item=jobs[k + 1][0].name if k + 1 < len(jobs) else None)
  return written, outputs


def _write_summary(args, loops, order, outputs, ratings=None):
  """OUTPUT_candidates.json: every candidate, best first, with its energy, looping fraction,
  periods used, predicted rating (--prefs) and the files written for it."""
  from animgen import media
  path = _suffixed(args.output[0], 'candidates', '.json')
  rows = []
  for rank, i in enumerate(order):
    loop = loops[i]
    row = {'rank': rank + 1, 'name': loop.name, 'energy': float(loop.energy),
           # the largest energy a stage-3 move's cut can lose to int32 capacities (float-optimal
           # cut of each move within it), absolute and as a share of the energy
           'rounding_bound': loop.rounding,
           'rounding_share': loop.rounding / max(float(loop.energy), 1e-30),
           'looping': float((loop.periods > 1).mean()),
           'periods': sorted(int(p) for p in np.unique(loop.periods) if p > 1),
           'outputs': outputs.get(i, [])}
    if ratings is not None:
      row['predicted_rating'] = float(ratings[i])
    rows.append(row)
  media.write_json(path, {'video': args.video, 'candidates': rows})
  return path


def _write_labels(path, loops, maps, best, period_list):
  """--labels-out: per-candidate int periods and starts, the candidate maps, names and best,
  and the shared stage-1 starts with their periods (what --reuse-stage1 reads back)."""
  from animgen import media
  arrays = {'periods': np.stack([l.periods for l in loops]).astype(np.int32),
            'starts': np.stack([l.starts for l in loops]).astype(np.int32),
            'candidate_maps': np.asarray(maps, bool),
            'names': np.asarray([l.name for l in loops]), 'best': np.int32(best),
            'stage1_starts': np.asarray(loops[0].stage1, np.int32),
            'stage1_periods': np.asarray(period_list, np.int32)}
  with media.atomic_file(path) as tmp:
    with open(tmp, 'wb') as f:
      np.savez_compressed(f, **arrays)


def default_order(loops):
  """Candidate indices, best first, without a preference model: energy per looping pixel, and
  candidates in which nothing loops last. Ours (Oh Sec. 4 ranks by learned preference): the
  energy per image pixel favours candidates that stay still, since a still pixel costs only
  its static term."""
  def key(i):
    moving = int((loops[i].periods > 1).sum())
    return (moving == 0, loops[i].energy / max(moving, 1))
  return sorted(range(len(loops)), key=key)


def _mean_responses(video, responses, say):
  """Time-mean responses [H, W, 32] of Oh's classes for the context features: the segmenter's,
  or all background without one (as the panels' clips without segmenter output)."""
  from animgen.looper import semantics
  from animgen.preference import features
  t, h, w, _ = video.shape
  if responses is not None:
    F, classes = responses
    if list(classes) == list(semantics.class_table().classes):
      return np.asarray(F).mean(0)
    say('--prefs: the segmenter\'s classes are not Oh\'s 32 (PASCAL-Context or ADE20K); its '
        'context features see all background')
  return features.background_responses(h, w)


def _preferred_order(args, video, loops, n_out, responses, prog):
  """--prefs: the candidates ranked by the user's predicted rating (Oh Sec. 4)."""
  from animgen.looper import render
  from animgen.preference import command as prefs, features
  responses = _mean_responses(video, responses, prog.say)
  with prog.stage('context features', len(loops), 'candidates') as st:
    parts = []
    for loop in loops:
      frames = np.asarray(render.render(video, loop.periods, loop.starts, n_out))
      parts.append(features.cinemagraph_parts(video, loop.periods, loop.starts, frames,
                                              responses))
      st.advance()
  ratings, order = prefs.rank_for_user(args.prefs, args.user, parts, args.user_ratings)
  args.predicted = ratings
  who = args.user or prefs.resolve_user(prefs.load_model(args.prefs), None, args.user_ratings)[1]
  prog.say(f'predicted ratings of {who}: ' + ', '.join(
      f'{loops[i].name} {ratings[i]:.2f}' for i in order))
  return order


def loop_frames(video, min_period=32, blend='periodic', say=None):
  """Any frames [T, H, W, 3] in [0, 1] -> (their MRF loop [P, H, W, 3], P the longest period,
  the stages.Loop): Liao's energy over every pixel (no candidates: all may loop), solved
  exactly at full size, rendered with `blend`. `animate --loop mrf` loops generated animations
  with it."""
  from animgen.looper import render, stages
  t, h, w, _ = video.shape
  config = stages.LoopConfig(min_period=min_period)
  stages.period_set(t, config)
  loop = stages.solve(np.asarray(video, np.float32), config)[0]
  n_out = int(loop.periods.max())
  frames = render.render(video, loop.periods, loop.starts, n_out, blend=blend != 'none',
                         method='frames' if blend == 'none' else blend)
  if say is not None:
    seam, neighbours = render.loop_seam(frames)
    say(f'mrf loop: {float((loop.periods > 1).mean()):.0%} of pixels loop, {n_out} frames, '
        f'seam {seam:.4f} (neighbouring frames {neighbours:.4f})')
  return np.asarray(frames), loop


def cmd_loop(args):
  from animgen.looper import stages
  from animgen.progress import Progress
  _check_args(args)
  video, fps = read_clip(args.video, args.max_size, args.max_seconds, args.start, args.frames)
  t, h, w, _ = video.shape
  coarse = args.coarse or auto_coarse(h, w)   # 0: automatic, asked for
  config = _loop_config(args, t, coarse)
  from animgen import media
  media.check_fits(BYTES_PER_PIXEL_FRAME * t * h * w, f'looping {t} frames at {w}x{h}',
                   'give a smaller --max-size, --max-seconds or --frames')
  mask = _read_mask(args.mask, h, w) if args.mask else None
  starts1 = (_read_stage1(args.reuse_stage1, stages.period_set(t, config))
             if args.reuse_stage1 else None)
  responses = None
  if args.segmentation:   # a user's file: read, or refused, before any progress line
    responses = class_responses(video, args, None)
  # every input is checked: from here on, progress on stderr
  prog = Progress('animgen loop', quiet=args.quiet)
  prog.say(f'{t} frames at {w}x{h}, {fps:g} fps')
  if coarse > 1:
    prog.say(f'coarse-to-fine: stages 1-2 at 1/{coarse} size (--coarse 1 solves at full size)')
  elif min(h, w) >= 256:
    prog.say(f'exact solve at full size (--coarse {auto_coarse(h, w)}: coarse-to-fine, faster, '
             'not exact)')
  if args.segmenter:
    with prog.stage('semantic responses'):
      responses = class_responses(video, args, prog.say)
  F, natural, maps, names = _targets(args, video, mask, responses, prog)
  tic = time.time()
  loops = stages.solve(video, config, semantics=F, natural=natural, targets=maps, names=names,
                       progress=prog, starts1=starts1)
  prog.say(f'solved {len(loops)} candidate(s) in {time.time() - tic:.1f} s')
  n_out = args.out_frames or int(max(l.periods.max() for l in loops))
  order = (_preferred_order(args, video, loops, n_out, responses, prog) if args.prefs
           else default_order(loops))
  best = order[0]
  written, outputs = _write_loops(args, video, fps, loops, order, n_out, prog)
  if args.candidates > 1:
    written.append(_write_summary(args, loops, order, outputs, getattr(args, 'predicted', None)))
  if args.labels_out:
    _write_labels(args.labels_out, loops, maps, best, stages.period_set(t, config))
    written.append(args.labels_out)
  print(f'animgen: wrote {n_out} frames at {w}x{h} (best: {loops[best].name}): '
        f'{", ".join(written)}')


def costs_p_short():
  from animgen.looper import costs
  return costs.Params().p_short


def _add_semantics_args(p):
  """The options that say where the semantics come from (Oh Sec. 3.1)."""
  p.add_argument('--segmentation', default=None,
                 help='per-frame segmenter output (.npz with "responses" [T,H,W,C] or "labels" '
                 '[T,H,W], optional "classes"); default: unsupervised motion fallback')
  p.add_argument('--segmenter', default=None, metavar='MODEL',
                 help='run this ONNX or TFLite segmentation model on every frame (PASCAL-Context '
                 'or ADE20K classes are merged into Oh\'s 32; see docs/looper.md for its input); '
                 '"person": mediapipe\'s selfie segmentation protects people as a non-natural '
                 'class beside the motion fallback\'s regions')
  p.add_argument('--segmenter-classes', default=None,
                 help='class names of --segmenter: pascal-context, ade20k or a file with one '
                 'name per line (default: by the number of output channels, 60 or 150)')
  p.add_argument('--segmenter-norm', default='imagenet', choices=('imagenet', 'unit'),
                 help='float input normalisation of --segmenter (imagenet mean/std, or [0, 1])')


def register(sub):
  from animgen.looper.maxflow import MINCUTS
  p = sub.add_parser('loop', help='video -> seamless loop / cinemagraph (Liao 2013, Oh 2017)')
  p.add_argument('video', help='MP4/AVI/MOV/GIF or a folder of frames')
  p.add_argument('-o', '--output', required=True, action='append',
                 help='.gif, .mp4, .png (animated) or a folder; repeat for several formats')
  p.add_argument('--candidates', type=validate.option(Int(1, hi=64)), default=1,
                 help='N > 1: solve every candidate (each object, each pair of objects, all '
                 'together), write the best to OUTPUT and the next N - 1 as OUTPUT_<candidate>, '
                 'and all of them with energies in OUTPUT_candidates.json')
  p.add_argument('--top-k', type=validate.option(Int(1, hi=32)), default=4,
                 help='candidate objects (Oh Sec. 3.1: K = 4)')
  _add_semantics_args(p)
  p.add_argument('--mask', default=None,
                 help='image, white where the loop should move: replaces the candidate map and '
                 're-runs stages 2-3 with alpha_sta doubled (Oh supp., user editing)')
  p.add_argument('--prefs', default=None,
                 help='preference model (.npz of animgen prefs fit): rank the candidates by '
                 "the --user's predicted rating (Oh Sec. 4) instead of energy per looping pixel")
  p.add_argument('--user', default=None, help='user id of the --prefs model')
  p.add_argument('--user-ratings', default=None,
                 help='a new user: CSV with columns cinemagraph,rating of panel cinemagraphs; '
                 'ranks for the panel user whose ratings are nearest (Oh Sec. 4)')
  p.add_argument('--reuse-stage1', default=None, metavar='LABELS.npz',
                 help='skip stage 1 by reusing the one cached in an earlier --labels-out of the '
                 'same clip and options (e.g. to edit a candidate with --mask)')
  p.add_argument('--labels-out', default=None,
                 help='.npz with per-pixel int periods and starts per candidate, and the maps')
  p.add_argument('--min-period', type=validate.option(Int(4, 4)), default=32,
                 help='minimum loop period in frames '
                 '(Oh supp.: 32; a multiple of 4)')
  p.add_argument('--p-short', type=validate.option(Int(1)), default=costs_p_short(),
                 help='natural pixels pay alpha_inf for periods below this (Oh supp.: 20; with '
                 'the minimum period 32 it never acts, as in the paper: lower --min-period)')
  p.add_argument('--max-period', type=validate.option(Int(0)), default=0,
                 help='maximum period (0: clip length)')
  p.add_argument('--coarse', type=validate.option(Int(0, hi=64)), default=1,
                 help='solve stages 1-2 at 1/N resolution, then refine (faster, not exact); 1 '
                 '(default): the exact solve at full size; 0: automatic, full size below 256 '
                 'px, else a factor keeping >= 64 px')
  p.add_argument('--max-size', type=validate.option(Int(0)), default=DEFAULT_MAX_SIZE,
                 help='downscale so the longer side is at most this (Oh: 960); 0 keeps it')
  p.add_argument('--max-seconds', type=validate.option(Float(0.0)), default=DEFAULT_MAX_SECONDS,
                 help='use at most this many seconds (Oh: 5); 0 keeps all')
  p.add_argument('--start', type=validate.option(Float(0.0)), default=0.0,
                 help='skip this many seconds first')
  p.add_argument('--frames', type=validate.option(Int(0)), default=0,
                 help='use this many frames (overrides '
                 '--max-seconds)')
  p.add_argument('--out-frames', type=validate.option(Int(0)), default=0,
                 help='output length (default: the longest period; every pixel loops a whole '
                 'number of times in it)')
  # periodic by default: on the shipped tree clip its wrap seam is 0.0146 against 0.0211
  # (frames) and 0.0200 (none), the clip's own neighbouring-frame step being 0.0134
  p.add_argument('--blend', default='periodic', choices=('periodic', 'frames', 'none'),
                 help='periodic (default): one 3-D time-periodic screened Poisson blend of the '
                 'whole loop (Liao et al. 2015); frames: wrap cross-fade + per-frame screened '
                 'Poisson seam blend; none: the input pixels as they are')
  p.add_argument('--no-blend', action='store_true', help='the same as --blend none')
  p.add_argument('--mincut', default='auto', choices=MINCUTS,
                 help='min-cut back end: bk (PyMaxflow, serial, fastest on a CPU), push-relabel '
                 '(JAX, for accelerators and batches) or auto (bk on a CPU when PyMaxflow imports)')
  p.add_argument('-q', '--quiet', action='store_true',
                 help='no progress on stderr (the line of written files still goes to stdout)')
  p.set_defaults(func=cmd_loop)
