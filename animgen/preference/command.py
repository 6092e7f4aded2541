"""`animgen prefs`: the preference model of Oh et al. 2017 Sec. 4 on a user panel.

  animgen prefs panel DIR            a simulated panel (the user study is not public)
  animgen prefs fit PANEL -o M.npz   the joint model (RBF) on all ratings of a panel
  animgen prefs eval PANEL -o DIR    Fig. 8 (mAP of every model, 9-fold CV), Figs. 9 and 10
  animgen prefs features FOLDER -o PANEL/cinemagraphs.npz   a real study's cinemagraph files
and `animgen loop VIDEO --candidates K --prefs M.npz --user ID` ranks a clip's candidates.
"""
import os
import sys
import time

import numpy as np

from animgen import validate
from animgen.errors import InputError
from animgen.validate import Float, Int


def cmd_panel(args):
  from animgen import media
  from animgen.preference import panel
  if os.path.exists(os.path.join(args.dir, 'ratings.csv')):
    raise InputError(f'{args.dir}: already holds a panel (ratings.csv); give a new folder')
  media.check_data_output(args.dir, 'DIR')
  tic = time.time()

  def progress(done, rows):
    if not args.quiet:
      print(f'\ranimgen prefs panel: {done}/{args.clips} clips, {rows} cinemagraphs, '
            f'{time.time() - tic:.0f} s', end='', flush=True, file=sys.stderr)

  p, truth = panel.make_panel(args.seed, args.clips, args.users, args.groups, args.size,
                              args.frames, args.observed, faces=not args.no_faces,
                              progress=progress)
  panel.write_panel(args.dir, p, truth)
  stats = panel.rating_stats(p.ratings)
  if not args.quiet:
    print(file=sys.stderr)
  print(f'animgen: wrote {args.dir}: {len(p.ids)} cinemagraphs from {args.clips} clips, '
        f'{len(p.users)} users, {stats["observed"]:.1%} rated, std > 1 for '
        f'{stats["share_std_above_1"]:.1%} of the cinemagraphs (paper 72.7 %), std < 0.5 for '
        f'{stats["share_std_below_0.5"]:.1%}')


def register(sub):
  p = sub.add_parser('prefs', help='per-user preference of cinemagraphs (Oh 2017 Sec. 4)')
  s = p.add_subparsers(dest='prefs_command', required=True, parser_class=type(p))
  a = s.add_parser('panel', help='make a simulated user panel (cinemagraphs, ratings, truth)')
  a.add_argument('dir', help='new folder for ratings.csv, cinemagraphs.npz, truth.npz')
  a.add_argument('--seed', type=validate.option(validate.SEED), default=0)
  a.add_argument('--clips', type=validate.option(Int(2, hi=100_000)), default=244,
                 help='clips (paper: 244)')
  a.add_argument('--users', type=validate.option(Int(2, hi=100_000)), default=59,
                 help='users (paper: 59)')
  a.add_argument('--groups', type=validate.option(Int(1, hi=1000)), default=4,
                 help='latent taste groups')
  a.add_argument('--size', type=validate.option(Int(16, hi=1024)), default=64,
                 help='clip side in pixels')
  a.add_argument('--frames', type=validate.option(Int(8, hi=1000)), default=40,
                 help='frames per clip')
  a.add_argument('--observed', type=validate.option(Float(0.0, 1.0, open_lo=True)), default=0.63,
                 help='share of ratings observed')
  a.add_argument('--no-faces', action='store_true', help='zero the face features')
  a.add_argument('-q', '--quiet', action='store_true')
  a.set_defaults(func=cmd_panel)
  _register_fit(s)
  _register_eval(s)
  _register_features(s)


# ------------------------------------------------------------------ a real study's files

_CINEMAGRAPH_EXTS = ('.gif', '.mp4', '.mov', '.avi', '.webm', '.mkv', '.png')


def cinemagraph_files(folder):
  """(ids, paths) of the cinemagraph files in a folder, in natural order; the id is the stem."""
  from animgen import media
  if not os.path.isdir(folder):
    raise InputError(f'{folder}: not a folder; give the folder of the study\'s cinemagraph '
                     f'files ({", ".join(_CINEMAGRAPH_EXTS)})')
  names = sorted((n for n in os.listdir(folder) if n.lower().endswith(_CINEMAGRAPH_EXTS)),
                 key=media.natural_key)
  ids = [os.path.splitext(n)[0] for n in names]
  if not names:
    raise InputError(f'{folder}: no cinemagraph files ({", ".join(_CINEMAGRAPH_EXTS)})')
  twice = sorted({i for i in ids if ids.count(i) > 1})
  if twice:
    raise InputError(f'{folder}: two files are named {twice[0]}; ids are file stems, rename one')
  return ids, [os.path.join(folder, n) for n in names]


def cmd_features(args):
  """The context features of a folder of cinemagraph files as a panel's cinemagraphs.npz."""
  from animgen import media
  from animgen.preference import features
  media.check_data_output(args.output, ext='.npz')
  ids, paths = cinemagraph_files(args.folder)
  motion = (features.load_motion_features(args.motion_features, len(ids))
            if args.motion_features else [None] * len(ids))
  rows = []
  for k, (path, m) in enumerate(zip(paths, motion)):
    frames, _ = media.read_video(path, max_frames=args.max_frames)
    rows.append(features.rendered_parts(frames, faces=not args.no_faces, motion=m))
    if not args.quiet:
      print(f'\ranimgen prefs features: {k + 1}/{len(paths)}', end='', flush=True,
            file=sys.stderr)
  if not args.quiet:
    print(file=sys.stderr)
  sizes = {p: sorted({r[p].size for r in rows}) for p in features.PARTS}
  media.write_npz(args.output, ids=np.asarray(ids), clip=np.arange(len(ids)),
                  name=np.asarray([''] * len(ids)),
                  **{f'part_{p}': np.stack([r[p] for r in rows]) for p in features.PARTS})
  print(f'animgen: wrote {args.output}: context features of {len(ids)} cinemagraphs (hand '
        f'{sizes["hand"][0]}, motion {sizes["motion"][0]}, semantic {sizes["semantic"][0]}); '
        'put it next to the study\'s ratings.csv')


def _register_features(s):
  f = s.add_parser('features', help="a real study: context features of a folder of "
                   "cinemagraph files, as a panel's cinemagraphs.npz")
  f.add_argument('folder', help='cinemagraph files (GIF/MP4/...); the file stem is the id '
                 'that ratings.csv uses')
  f.add_argument('-o', '--output', required=True, help='.npz (e.g. PANEL/cinemagraphs.npz)')
  f.add_argument('--motion-features', default=None,
                 help='.npz with features [N, D], one row per file in natural order (e.g. real '
                 'C3D features), instead of the flow-histogram stand-in')
  f.add_argument('--max-frames', type=validate.option(Int(2, hi=100_000)), default=150,
                 help='read at most this many frames')
  f.add_argument('--no-faces', action='store_true', help='zero the face features')
  f.add_argument('-q', '--quiet', action='store_true')
  f.set_defaults(func=cmd_features)


# ------------------------------------------------------------------------------ the model


def _mapping_arrays(prefix, M):
  from animgen.preference import models
  if isinstance(M, models.RBF):
    return {f'{prefix}_kind': np.asarray('rbf'), f'{prefix}_centres': np.asarray(M.centres),
            f'{prefix}_sigmas': np.asarray(M.sigmas), f'{prefix}_W': np.asarray(M.W)}
  return {f'{prefix}_kind': np.asarray('linear'), f'{prefix}_W': np.asarray(M.W)}


def _mapping(arrays, prefix):
  from animgen.preference import models
  if str(arrays[f'{prefix}_kind']) == 'rbf':
    return models.RBF(*(arrays[f'{prefix}_{k}'] for k in ('centres', 'sigmas', 'W')))
  return models.Linear(arrays[f'{prefix}_W'])


def save_model(path, params, scales, sizes, p, V):
  """The fitted joint model and the panel's context features V as an npz of plain arrays
  (read back without pickles)."""
  from animgen import media
  media.write_npz(path, U=params.U, Y=params.Y, theta=params.theta, users=p.users, ids=p.ids,
                  V=np.asarray(V),
                  **{f'scale_{k}': np.float64(v) for k, v in scales.items()},
                  **{f'size_{k}': np.int64(v) for k, v in sizes.items()},
                  **_mapping_arrays('ml', params.Ml), **_mapping_arrays('mh', params.Mh))


def load_model(path):
  """-> (models.Params, scales, sizes, users, V, cinemagraph ids) of `animgen prefs fit`;
  one-line errors."""
  from animgen.preference import features, models, panel
  arrays = panel.read_npz(path, 'preference model') if os.path.isfile(path) else None
  if arrays is None:
    raise InputError(f'{path}: not found; make one with animgen prefs fit PANEL -o {path}')
  need = ['U', 'Y', 'theta', 'users', 'ids', 'V', 'ml_kind', 'mh_kind'] + [
      f'{k}_{p}' for k in ('scale', 'size') for p in features.PARTS]
  missing = [k for k in need if k not in arrays]
  if missing:
    raise InputError(f'{path}: not a preference model of animgen prefs fit (no '
                     f'{", ".join(missing[:3])})')
  params = models.Params(arrays['U'], arrays['Y'], _mapping(arrays, 'ml'),
                         _mapping(arrays, 'mh'), arrays['theta'], np.zeros(0))
  scales = {p: float(arrays[f'scale_{p}']) for p in features.PARTS}
  sizes = {p: int(arrays[f'size_{p}']) for p in features.PARTS}
  return (params, scales, sizes, arrays['users'].astype(str), arrays['V'],
          arrays['ids'].astype(str))


def fit_panel(p, mapping='rbf', seed=0, **hyper):
  from animgen.preference import features, models
  rows = [{k: p.parts[k][i] for k in features.PARTS} for i in range(len(p.ids))]
  V, scales = features.normalise_parts(rows)
  n = len(p.users)
  if n < 3:
    raise InputError(f'{n} user(s) in the panel: the joint model needs at least 3')
  hyper = {'dim': min(models.DIM, n - 1), 'd': min(models.NUM_BASIS, n - 1), **hyper}  # dim < n
  params = models.joint_fit(p.ratings, p.observed, V, mapping=mapping,
                            rng=np.random.default_rng(seed), **hyper)
  return params, scales, {k: p.parts[k].shape[1] for k in features.PARTS}, V


def cmd_fit(args):
  from animgen import media
  from animgen.preference import panel
  media.check_data_output(args.output, ext='.npz')
  p = panel.load_panel(args.panel)
  tic = time.time()
  params, scales, sizes, V = fit_panel(p, args.mapping, args.seed)
  save_model(args.output, params, scales, sizes, p, V)
  print(f'animgen: wrote {args.output}: joint model ({args.mapping}) of {len(p.users)} users on '
        f'{len(p.ids)} cinemagraphs, {int(p.observed.sum())} ratings, {time.time() - tic:.1f} s')


def personal_ratings(params, V_panel, V, j, k=5):
  """User j's ratings of new cinemagraphs V [N, D]: Eq. 10's f(v, u_j), plus the user's mean
  residual (completed rating - f) on the k panel cinemagraphs nearest in context. Ours: f is
  additive in u, so on its own it would rank new cinemagraphs alike for every user."""
  from animgen.preference import models
  panel_f = models.joint_predict(params, V_panel, j)
  residual = np.asarray(params.Y)[:, j] - panel_f
  d2 = ((np.asarray(V)[:, None] - np.asarray(V_panel)[None]) ** 2).sum(-1)
  near = np.argsort(d2, axis=1, kind='stable')[:, :min(k, len(V_panel))]
  return models.joint_predict(params, V, j) + residual[near].mean(1)


def user_index(users, user, model_path) -> int:
  if user not in set(users):
    shown = ', '.join(users[:5]) + (', ...' if len(users) > 5 else '')
    raise InputError(f'--user {user}: not a user of {model_path} ({len(users)} users: {shown})')
  return int(np.flatnonzero(users == user)[0])


def read_user_ratings(path):
  """A new user's ratings {cinemagraph id: rating} from a CSV with the columns cinemagraph and
  rating (a user column, if present, is ignored); one-line errors naming the row."""
  from animgen.preference import panel
  rows = panel.read_ratings_csv(path, user_column=False)
  return {c: r for c, _, r in rows}


def nearest_user(Y, ids, given, source) -> int:
  """The panel user whose completed ratings Y [m, n] of the cinemagraphs `ids` are nearest
  (mean squared difference) to a new user's ratings `given` (Oh Sec. 4: a new user is served
  as the most similar user in the database)."""
  index = {c: i for i, c in enumerate(ids)}
  unknown = sorted(c for c in given if c not in index)
  if unknown:
    raise InputError(f'{source}: cinemagraph {unknown[0]} is not one the model was fitted on '
                     f'({len(unknown)} unknown id(s)); rate cinemagraphs of the panel')
  rows = np.asarray([index[c] for c in given])
  r = np.asarray(list(given.values()))
  d = ((np.asarray(Y)[rows] - r[:, None]) ** 2).mean(0)
  return int(np.argmin(d))


def resolve_user(model, user=None, user_ratings=None, model_path='') -> tuple[int, str]:
  """(index, description) of the user to rank for: --user ID, or the panel user nearest to
  the ratings of --user-ratings FILE."""
  params, users, ids = model[0], model[3], model[5]
  if user_ratings is None:
    return user_index(users, user, model_path), user
  j = nearest_user(params.Y, ids, read_user_ratings(user_ratings), user_ratings)
  return j, f'{os.path.basename(user_ratings)} (nearest panel user {users[j]})'


def rank_for_user(model_path, user, parts_list, user_ratings=None):
  """Predicted ratings of candidate cinemagraphs (context-feature part dicts) for a user of the
  model (or the panel user nearest to the ratings in `user_ratings`), and the candidate order,
  best first."""
  from animgen.preference import features
  model = load_model(model_path)
  params, scales, sizes, users, V_panel = model[:5]
  j = resolve_user(model, user, user_ratings, model_path)[0]
  for parts in parts_list:
    bad = [k for k in features.PARTS if np.size(parts[k]) != sizes[k]]
    if bad:
      raise InputError(f'{model_path}: fitted on {bad[0]} features of size {sizes[bad[0]]}, '
                       f'the candidates have {np.size(parts[bad[0]])}')
  V = np.stack([features.apply_scales(parts, scales) for parts in parts_list])
  ratings = personal_ratings(params, V_panel, V, j)
  return np.asarray(ratings), [int(i) for i in np.argsort(-np.asarray(ratings), kind='stable')]


# ------------------------------------------------------------------------------- evaluate

# a 4 x 3 corner of supp. Sec. 2's 7 x 9 grid, for speed (--grid small; the default is all of it)
SMALL_GRID = {'lambda_R': (1e-3, 1e-2, 0.1, 1.0), 'd': (10, 25, 40)}


def _panel_matrix(p):
  from animgen.preference import features
  rows = [{k: p.parts[k][i] for k in features.PARTS} for i in range(len(p.ids))]
  return features.normalise_parts(rows)[0]


def _size_caps(n):
  """The latent size and RBF basis of the models that have them, at most n - 1 for n users
  (the Laplacian eigenmap and the k-means over users need it); the paper's 25 otherwise."""
  from animgen.preference import models
  dim, d = min(models.DIM, n - 1), min(models.NUM_BASIS, n - 1)
  return {'S-RF + MC': {'dim': dim}, 'S-RF + AEm': {'dim': dim, 'd': d},
          'Joint (Lin.)': {'dim': dim, 'd': d}, 'Joint (RBF)': {'dim': dim, 'd': d}}


def _capped(grid, n):
  return dict(grid, d=tuple(sorted({min(v, n - 1) for v in grid['d']})))


def evaluate_panel(p, seed=0, grid='paper', names=None, say=print):
  """supp. Sec. 3.2 on a panel: the joint models' lambda and d tuned on the validation 10 %, then
  9-fold cross-validation of every model of Fig. 8. -> (table, tuned hyper-parameters)."""
  from animgen.preference import baselines, evaluate
  V = _panel_matrix(p)
  rng = np.random.default_rng(seed)
  split = evaluate.split_protocol(p.observed, rng)
  full = {'lambda_R': evaluate.LAMBDA_GRID, 'd': evaluate.BASIS_GRID}
  hyper = _size_caps(len(p.users))
  for name in baselines.JOINT:
    tic = time.time()
    best, _ = evaluate.tune(name, p.ratings, p.observed, V, split, rng, base=hyper[name],
                            grid=_capped(full if grid == 'paper' else SMALL_GRID, len(p.users)))
    hyper[name] = best
    say(f'{name}: {best} on the validation split ({time.time() - tic:.0f} s)')
  table = {}
  for name in names or baselines.MODELS:
    tic = time.time()
    table.update(evaluate.cross_validate([name], p.ratings, p.observed, V, rng, hyper, split))
    say(f'{name}: mAP {table[name][0]:.3f} +- {table[name][1]:.3f}, RMSE {table[name][2]:.3f} '
        f'({time.time() - tic:.0f} s)')
  return table, hyper


def cmd_eval(args):
  from animgen import media
  from animgen.preference import panel
  media.check_data_output(args.output, 'DIR')
  p = panel.load_panel(args.panel)
  say = (lambda line: None) if args.quiet else (
      lambda line: print(f'animgen prefs eval: {line}', file=sys.stderr, flush=True))
  tic = time.time()
  table, hyper = evaluate_panel(p, args.seed, args.grid, say=say)
  os.makedirs(args.output, exist_ok=True)
  media.write_json(os.path.join(args.output, 'fig8_map.json'), {
      'models': {k: {'map': v[0], 'map_std': v[1], 'rmse': v[2]} for k, v in table.items()},
      'hyper': hyper, 'seed': args.seed, 'grid': args.grid, 'cinemagraphs': len(p.ids),
      'users': len(p.users), 'ratings': int(p.observed.sum()), 'seconds': time.time() - tic})
  from animgen.preference import figures
  truth = (panel.load_truth(args.panel) if os.path.isfile(os.path.join(args.panel, 'truth.npz'))
           else None)
  params = fit_panel(p, 'rbf', args.seed, **hyper['Joint (RBF)'])[0]
  written = figures.write_all(args.output, p, table, params, args.seed, truth)
  lines = ['| model | mAP (std over 9 folds) | RMSE |', '|---|---|---|'] + [
      f'| {k} | {v[0]:.3f} ({v[1]:.3f}) | {v[2]:.3f} |' for k, v in table.items()]
  print('\n'.join(lines))
  print(f'animgen: wrote {os.path.join(args.output, "fig8_map.json")}, {", ".join(written)}')


def _register_eval(s):
  e = s.add_parser('eval', help="Fig. 8's mAP of every model (9-fold CV), Figs. 9 and 10")
  e.add_argument('panel', help='panel folder (ratings.csv, cinemagraphs.npz)')
  e.add_argument('-o', '--output', required=True, help='folder for the table and figures')
  e.add_argument('--grid', choices=('paper', 'small'), default='paper',
                 help="the joint models' lambda x d search: supp. Sec. 2's full 7 x 9 grid "
                 '(default) or a 4 x 3 corner of it (about half the time)')
  e.add_argument('--seed', type=validate.option(validate.SEED), default=0)
  e.add_argument('-q', '--quiet', action='store_true')
  e.set_defaults(func=cmd_eval)


def _register_fit(s):
  f = s.add_parser('fit', help='fit the joint model (Eqs. 8-10) on all ratings of a panel')
  f.add_argument('panel', help='panel folder (ratings.csv, cinemagraphs.npz)')
  f.add_argument('-o', '--output', required=True, help='model .npz (plain arrays, no pickles)')
  f.add_argument('--mapping', choices=('rbf', 'linear'), default='rbf',
                 help="auto-encoder mappings: Gaussian RBF (the paper's best) or linear")
  f.add_argument('--seed', type=validate.option(validate.SEED), default=0)
  f.set_defaults(func=cmd_fit)
