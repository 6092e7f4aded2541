"""`animgen` console script.

  animgen animate PHOTO -o OUT.(mp4|gif|png|folder) [--workdir RUN]
                  [--appearance-workdir RUN] [--arrows ...] [--patch IMG --patch-mask M]
  animgen animate PHOTO -o OUT.(mp4|gif|png|folder) --method image2gif [--workdir RUN]
                  [--frames N] [--fps F]
  animgen loop VIDEO -o OUT.(gif|mp4|png|folder) [--candidates K] [--segmentation F.npz]
               [--mask M.png] [--labels-out L.npz] [--min-period N]
  animgen convert OFFICIAL_MODEL_DIR [--motion-out RUN] [--appearance-out RUN] [--trust-pickle]
  animgen datasets prepare NAME [--data-dir DIR] [--manual-dir DIR]
  animgen sample --workdir RUN [--caption TEXT] -o OUT.gif [--num N] [--attention F.png]

Bad input prints one line and exits 2; outputs are written atomically. Progress goes to stderr
(`-q` silences it); stdout gets one line naming the files written.
"""
import argparse
import os
import sys

import numpy as np

from animgen import runtime, validate
from animgen.validate import Float, Int
from animgen.errors import InputError

# the most frames animate writes (a 4K photo's 100,000 frames are 2.5 TB as uint8)
MAX_FRAMES = 100_000


class _Parser(argparse.ArgumentParser):
  def error(self, message):  # argparse's errors are user errors too: one line, exit 2
    raise InputError(f'{message} (see {self.prog} --help)')


def _flow_path(out: str) -> str:
  stem, ext = os.path.splitext(out.rstrip('/'))
  return f'{stem}_flow{ext or ""}'


DEFAULT_APPEARANCE_RUN = 'runs/landscape_appearance'
# --workdir, --frames and --fps when not given, per --method
ANIMATE_DEFAULTS = {'landscape': {'workdir': 'runs/landscape', 'frames': 199, 'fps': 30.0},
                    'image2gif': {'workdir': 'runs/image2gif_real', 'frames': None, 'fps': 5.0}}
# the options of `animate` that --method image2gif takes; the others are Animating Landscape's
IMAGE2GIF_OPTIONS = ('image', 'output', 'workdir', 'frames', 'fps', 'no_flow', 'quiet', 'method')


def _read_patch(args):
  """The --patch image and --patch-mask (bool [H, W, 1]), read before any work starts."""
  from animgen import media
  target = media.read_image(args.patch)
  mask = media.read_image(args.patch_mask).mean(-1, keepdims=True) > 0.5
  if not mask.any():
    raise InputError(f'--patch-mask {args.patch_mask} is empty: mark the patch pixels white')
  return target, mask


def _appearance_keys(args, image, loop0, model):
  """Appearance key codes -> (keys [K, Z], start row, z_in = E^A(first loop frame), source):
  from colour patches (Eq. 13), z^A ~ N(0, I), the latent LSTM (Appendix B), or a codebook
  sequence (the official path: start = the row nearest z_in), in that order."""
  import jax.numpy as jnp
  from animgen import animate, media
  from animgen.ops import generate, warp
  size = model.size
  z_in = animate.encode_frame(model, loop0)
  if args.patch:
    small = animate.network_input(image, size)
    target, mask = args.patch_images
    rs = lambda a: warp.resize(jnp.asarray(a, jnp.float32)[None], size, size, 'bilinear')
    z_hat, _ = animate.code_from_patch(model.maps, small, rs(target) * 2.0 - 1.0,
                                       (rs(mask) > 0.5).astype(jnp.float32), z_in,
                                       steps=args.control_steps)
    return np.stack([z_in, z_hat]), 0, z_in, 'patch (Eq. 13)'
  if args.a_normal:
    z_hat = np.random.default_rng(args.seed).normal(size=z_in.shape).astype(np.float32)
    return np.stack([z_in, z_hat]), 0, z_in, 'z^A ~ N(0, I)'
  seqs = model.sequences
  explicit = args.a_index is not None or args.a_mix is not None or args.a_random
  if not explicit and model.lstm is not None:
    length = int(np.median([len(q) for q in seqs])) if seqs else 24
    return animate.lstm_codes(model, z_in, length), 0, z_in, 'latent LSTM'
  if not seqs:
    raise InputError(f'no appearance codebook in {args.appearance_workdir}: build it with '
                     'python -m animgen.main --mode=finalize '
                     '--config=configs/landscape_appearance.py '
                     f'--workdir={args.appearance_workdir}')
  i = animate.choose_sequence(len(seqs), args.a_index, args.a_mix, args.seed)
  return seqs[i], generate.nearest_index(seqs[i], z_in), z_in, f'codebook sequence {i}'


def _check_fps(fps):
  if not (np.isfinite(fps) and fps > 0):
    raise InputError(f'--fps {fps}: give a positive number')


def _check_animate_args(args):
  """One-line errors for the options of `animate`, before any work."""
  from animgen import animate, media
  for out in args.output:
    media.check_output(out)
  _check_fps(args.fps)
  if args.flow_output:
    media.check_output(args.flow_output, '--flow-output')
  flows = [] if args.no_flow else [('--flow-output', args.flow_output or
                                     _flow_path(args.output[0]))]
  media.check_distinct([('IMAGE', args.image), ('--patch', args.patch),
                        ('--patch-mask', args.patch_mask), ('--arrows', args.arrows)],
                       [('-o', o) for o in args.output] + flows)
  if args.arrows is not None:
    animate.parse_arrows(args.arrows)   # a bad file or spec fails before any work
  if args.motion_only and args.appearance_only:
    raise InputError('--motion-only and --appearance-only exclude each other: pick one')
  if bool(args.patch) != bool(args.patch_mask):
    raise InputError('--patch and --patch-mask go together: give the colour image and the mask')
  if args.a_index is not None and args.a_mix is not None:
    raise InputError('--a-index and --a-mix exclude each other: pick one')
  if args.z_mix is not None and not 0 <= args.z_mix <= 1:
    raise InputError(f'--z-mix {args.z_mix}: give a fraction in [0, 1] (official -mz)')
  if args.a_mix is not None and not 0 <= args.a_mix <= 1:
    raise InputError(f'--a-mix {args.a_mix}: give a fraction in [0, 1] (official -az)')
  if not (np.isfinite(args.speed) and args.speed > 0):
    raise InputError(f'--speed {args.speed}: give a positive number (official -ms 0.2)')
  if not 0 <= args.pad < 1:
    raise InputError(f'--pad {args.pad}: give a fraction in [0, 1) of the network size '
                     '(official 0.25: 64 px at 256)')
  animate.appearance_repeats(args.a_speed)


MRF_MAX_FRAMES = 128  # `animate --loop mrf`: the looper's tables grow with frames x pixels


def _check_mrf_args(args):
  """One-line errors of `animate --loop mrf`, before any work."""
  from animgen.looper import stages
  if args.loop_frames is not None:
    raise InputError('--loop-frames sets the cross-fade loop; --loop mrf chooses each pixel\'s '
                     'period itself: drop one of them')
  if args.frames > MRF_MAX_FRAMES:
    raise InputError(f'--frames {args.frames}: --loop mrf solves over every generated frame; '
                     f'give --frames {MRF_MAX_FRAMES} or fewer (e.g. --frames 64)')
  stages.period_set(args.frames, stages.LoopConfig(min_period=args.min_period))


def _mrf_loop(args, motion, notes):
  """The generated frames looped per pixel by animgen.looper (Liao 2013 energy, periodic blend)."""
  from animgen import media
  from animgen.looper import command as looper
  from animgen.progress import Progress
  prog = Progress('animgen animate', quiet=args.quiet)
  with prog.stage(f'mrf loop of {len(motion)} frames'):
    video = np.asarray(motion, np.float32) / 255.0
    frames, loop = looper.loop_frames(video, args.min_period, say=prog.say)
  notes.append(f'mrf loop: {float((loop.periods > 1).mean()):.0%} of pixels loop')
  return media.to_uint8(frames)


def _animate_motion(args, image, loop, notes):
  """Motion loop of the photo (Algorithm 1, lines 1-9) -> (frames uint8, flows)."""
  from animgen import animate
  arrows = animate.parse_arrows(args.arrows) if args.arrows else None
  model = animate.motion_model(args.workdir)
  notes.append(f'motion model: step {model.run.step} of {args.workdir}')
  book = model.codebook
  if book is None:
    raise InputError(f'no motion codebook in {args.workdir}: let training finish, or build it '
                     'with python -m animgen.main --mode=finalize --config=CONFIG '
                     f'--workdir={args.workdir}')
  if args.z_normal:
    z = np.random.default_rng(args.seed).normal(size=book.shape[1]).astype(np.float32)
    notes.append('z^M ~ N(0, I)')
  else:
    z = animate.choose_code(book, args.z_index, args.z_mix, args.seed)
  if arrows is not None:
    h, w = args.photo_size                          # Eq. 12 reads positions relative to these
    small = animate.network_input(image, model.size)
    z0 = z if (args.z_index is not None or args.z_mix is not None) else book.mean(0)
    z, loss = animate.code_from_arrows(model.predict, small, arrows, h, w, z0,
                                       steps=args.control_steps)
    notes.append(f'z^M from {len(arrows)} arrow(s), Eq. 12 loss {loss:.3g}')
  return animate.animate_motion(model.predict, image, z, model.size, args.frames,
                                speed=args.speed, pad_fraction=args.pad, loop_length=loop,
                                progress=not args.quiet)


def _write_animation(args, frames, flows, notes):
  from animgen import media
  for out in args.output:
    media.write_video(out, frames, fps=args.fps)
  outputs = list(args.output)
  if not args.no_flow and len(flows):
    import jax.numpy as jnp
    from animgen.ops import flow_viz
    from animgen import plot
    viz = flow_viz.flow_to_rgb(jnp.asarray(flows))
    flow_out = args.flow_output or _flow_path(args.output[0])
    media.write_video(flow_out, viz, fps=args.fps)
    key = os.path.splitext(flow_out.rstrip('/'))[0] + '_key.png'   # the colours' legend
    plot.flow_key(key, flow_viz.max_magnitude(flows), unit='grid units')
    outputs += [flow_out, key]
  h, w = frames.shape[1:3]
  extra = f' ({"; ".join(notes)})' if notes else ''
  print(f'animgen: wrote {len(frames)} frames at {w}x{h}{extra}: {", ".join(outputs)}')


def _check_image2gif_args(args):
  """One-line errors for `animate --method image2gif`, before any work."""
  from animgen import media
  for dest, flag, default in args.landscape_options:
    if getattr(args, dest) != default:
      raise InputError(f'{flag} is an Animating Landscape option: drop it with --method '
                       'image2gif (which takes -o, --workdir, --frames, --fps, -q)')
  for out in args.output:
    media.check_output(out)
  media.check_distinct([('IMAGE', args.image)], [('-o', o) for o in args.output])
  if args.frames is not None and args.frames < 2:
    raise InputError(f'--frames {args.frames}: need at least 2 frames (the photo and one more)')
  _check_fps(args.fps)


def _require_image2gif_run(workdir: str) -> None:
  """One line saying how to train an Image2GIF model when `workdir` holds no training run."""
  if not os.path.isfile(os.path.join(workdir, 'config.json')):
    raise InputError(f'no trained Image2GIF model in {workdir}: train one with python -m '
                     'animgen.main --config=configs/image2gif.py:real --config.manual_dir=DIR '
                     f'--workdir={workdir} (DIR holding your cinemagraphs, see docs/datasets.md)')


def cmd_animate_image2gif(args):
  """Image2GIF (Zhou 2018, Sec. 3): the photo centre-cropped and resized to the network's 64 x
  64 -> the trained generator's cinemagraph at 64 x 64, the photo as its first frame."""
  import jax
  from animgen import media, runs
  from animgen.datasets import cinemagraph_folder
  from animgen.progress import Progress
  _check_image2gif_args(args)
  _require_image2gif_run(args.workdir)
  photo = media.to_uint8(media.read_image(args.image))
  run = runs.load(args.workdir, 'image2gif')
  sample = run.config.get('sample')
  num = args.frames or (sample.num_frames if sample else cinemagraph_folder.NUM_FRAMES)
  x = cinemagraph_folder.square_frames(photo[None])[0]     # as the training frames
  with Progress('animgen animate', quiet=args.quiet).stage(f'image2gif: {num} frames'):
    frames = media.to_uint8(np.asarray(
        jax.jit(run.method.cinemagraph, static_argnums=2)(run.state.params, x, num)))
  for out in args.output:
    media.write_video(out, frames, fps=args.fps)
  kind = 'RNN+DQN' if run.method.dqn else 'RNN'
  print(f'animgen: wrote {len(frames)} frames at {frames.shape[2]}x{frames.shape[1]} '
        f'(Image2GIF {kind}, step {run.step}): {", ".join(args.output)}')


def cmd_animate(args):
  """Animating Landscape, Algorithm 1, as the official test.py: photo -> looping animation at
  its resolution, with motion (P^M, cross-faded loop) and appearance (P^A under the official
  code schedule); with --method image2gif, Image2GIF's cinemagraph (cmd_animate_image2gif)."""
  if args.method == 'landscape' and args.loop == 'mrf' and args.frames is None:
    args.frames = 64  # --loop mrf solves over every frame: 64 frames allow periods 32 .. 64
  for key, value in ANIMATE_DEFAULTS[args.method].items():
    if getattr(args, key) is None:
      setattr(args, key, value)
  if args.method == 'image2gif':
    return cmd_animate_image2gif(args)
  from animgen import animate, media
  from animgen.ops import generate, warp
  _check_animate_args(args)
  min_loops = animate.appearance_repeats(args.a_speed)
  mrf = args.loop == 'mrf' and not args.no_loop
  loop = None if args.no_loop or mrf else (args.loop_frames or (args.frames + 3) // 2)  # 199->101
  if mrf:
    _check_mrf_args(args)
  if loop:
    generate.crossfade_weights(args.frames, loop)   # a bad --loop-frames fails before any work
  a_explicit = args.appearance_workdir is not None
  if args.appearance_workdir is None:
    args.appearance_workdir = DEFAULT_APPEARANCE_RUN
  use_appearance = not args.motion_only and (a_explicit or args.appearance_only or args.patch or
                                             os.path.isdir(args.appearance_workdir))
  if not args.appearance_only:
    animate.require_run(args.workdir, 'motion')
  image = media.read_image(args.image)
  args.photo_size = image.shape[:2]                 # --arrows are in these pixels
  image = warp.shrink(image[None], args.max_size)[0]
  h, w = image.shape[:2]
  # the frames as uint8 and their float copy for the writer, and the flows at the network size
  media.check_fits(args.frames * h * w * 3 * 5 + args.frames * 256 * 256 * 8,
                   f'--frames {args.frames} at {w}x{h}', 'give fewer --frames or a smaller photo')
  a_model = animate.appearance_model(args.appearance_workdir) if use_appearance else None
  args.patch_images = _read_patch(args) if args.patch else None
  notes, flows = [], []
  if args.appearance_only:
    motion = media.to_uint8(image)[None]
    notes.append('appearance only')
  else:
    motion, flows = _animate_motion(args, image, loop, notes)
    if mrf:
      motion = _mrf_loop(args, motion, notes)
  frames = motion
  if a_model is not None:
    keys, start, z_in, source = _appearance_keys(args, image, motion[0], a_model)
    length = len(motion) if len(motion) > 1 else (loop or args.frames)
    codes = generate.appearance_codes(keys, start, z_in, length, min_loops)
    frames = animate.animate_appearance(a_model.maps, motion, codes, a_model.size,
                                        progress=not args.quiet)
    notes.append(f'appearance: {source}, {len(codes) // length} motion loop(s) per cycle, '
                 f'step {a_model.run.step} of {args.appearance_workdir}')
  _write_animation(args, frames, flows, notes)


def _check_sample_args(args):
  """Every argument error of `animgen sample` before any work starts."""
  from animgen import media
  media.check_output(args.output)
  if args.num < 1:
    raise InputError(f'--num {args.num}: need at least one GIF')
  if args.attention:
    media.check_data_output(args.attention, '--attention', '.png')
  media.check_distinct([], [('-o', args.output), ('--attention', args.attention)])


def cmd_sample(args):
  """Sync-DRAW (Mittal 2017, Sec. 3.4): GIFs from the prior, or from a caption alone (Sec. 3.2),
  side by side in one animation; optionally the Fig. 4 canvas/attention grid of the first."""
  import jax
  from animgen import media, runs
  from animgen.methods import syncdraw
  from animgen.progress import Progress
  _check_sample_args(args)
  run = runs.load(args.workdir, 'syncdraw')
  method, state = run.method, run.state
  if method.captions and args.caption is None:   # its decoder reads z and the caption's s^t
    raise InputError(f'--workdir {args.workdir} was trained with captions: give --caption, '
                     'e.g. --caption "the digit 3 is moving up and down"')
  tokens = method.caption_tokens(args.caption) if args.caption is not None else None
  # the run and the caption are checked: from here on, progress on stderr
  prog = Progress('animgen sample', quiet=args.quiet)
  rng = jax.random.key(args.seed)
  with prog.stage(f'generate {args.num} GIF(s)'):
    out = jax.jit(method.generate, static_argnums=2)(state.params, rng, args.num, tokens)
    gifs = np.asarray(jax.nn.sigmoid(out['canvases'][:, -1]))        # [num, N, H, W]
  with prog.stage(f'write {args.output}'):
    frames = np.concatenate(list(gifs), axis=2)                       # side by side
    media.write_video(args.output, np.asarray(syncdraw.to_rgb(frames)), fps=args.fps)
  written = [args.output]
  if args.attention:
    with prog.stage(f'attention grid {args.attention}'):
      media.write_image(args.attention, method.attention_figure(state.params, rng, tokens)[0])
    written.append(args.attention)
  what = f'caption {args.caption!r}' if tokens is not None else 'the prior'
  print(f'animgen: wrote {args.num} GIF(s) of {gifs.shape[1]} frames at {gifs.shape[3]}x'
        f'{gifs.shape[2]} from {what}: {", ".join(written)}')


def cmd_datasets(args):
  """Prepares a dataset (generates a synthetic one) and prints its splits."""
  from animgen import input_pipeline
  builder = input_pipeline.prepare(args.name, args.data_dir, args.manual_dir)
  for split, info in builder.info.splits.items():
    print(f'{args.name} {split}: {info.num_examples} examples in {builder.data_dir}')


def _add_animate(sub):
  a = sub.add_parser('animate', help='photo -> looping animation (Animating Landscape, or '
                     'Image2GIF with --method image2gif)')
  a.add_argument('image', help='input photo (any size, grey/RGB/RGBA, 8 or 16 bit)')
  a.add_argument('-o', '--output', required=True, action='append',
                 help='.mp4, .gif, .png (animated) or a folder; repeat for several formats')
  a.add_argument('--method', choices=tuple(ANIMATE_DEFAULTS), default='landscape',
                 help='landscape (default): Animating Landscape at the photo\'s resolution; '
                 'image2gif: an Image2GIF cinemagraph of the photo centre-cropped to 64x64')
  a.add_argument('--workdir', default=None,
                 help='training run with checkpoints (and codebook) (default runs/landscape; '
                 'runs/image2gif_real with --method image2gif)')
  a.add_argument('--frames', type=validate.option(Int(2, hi=MAX_FRAMES)), default=None,
                 help='frames to generate (official 199); image2gif: frames written, the photo '
                 'included (default the run\'s sequence length, 6 for configs/image2gif.py:real)')
  a.add_argument('--loop-frames', type=validate.option(Int(2)), default=None,
                 help="length of the cross-faded loop (default (frames + 3) // 2: 101 for 199)")
  a.add_argument('--no-loop', action='store_true', help='write the generated frames unlooped')
  a.add_argument('--loop', choices=('crossfade', 'mrf'), default='crossfade',
                 help='crossfade (default, the official code): a linear cross-fade of the '
                 'generated frames; mrf: each pixel gets its own period and start by '
                 'animgen.looper (Liao 2013) and a periodic gradient-domain blend (use e.g. '
                 '--frames 64: it solves over every frame)')
  a.add_argument('--min-period', type=validate.option(Int(4, 4)), default=32,
                 help='--loop mrf: shortest loop period in frames (a multiple of 4)')
  a.add_argument('--speed', type=validate.option(Float(0.0, 64.0, open_lo=True)), default=0.2,
                 help='motion speed s_m (official -ms 0.2)')
  g = a.add_mutually_exclusive_group()
  g.add_argument('--z-index', type=validate.option(Int(0)), default=None,
                 help='motion codebook row')
  g.add_argument('--z-mix', type=validate.option(validate.PROB), default=None,
                 help='official -mz: a fraction t in [0, 1] of the codebook, interpolating '
                 'rows floor and ceil of (K - 1) t (default: a random t from --seed)')
  g.add_argument('--z-normal', action='store_true',
                 help='z^M ~ N(0, I) from --seed (for runs trained with model.latent_reg=vae, '
                 'wae or wae_gan, Sec. 6.6)')
  a.add_argument('--seed', type=validate.option(validate.SEED), default=None,
                 help='seed of random codebook rows / sequences and of --z-normal, --a-normal')
  a.add_argument('--arrows', default=None,
                 help='motion control (Eq. 12): "x0,y0,x1,y1;..." in photo pixels, or a JSON '
                 'file of [[x0, y0, x1, y1], ...]; motion goes from (x0, y0) to (x1, y1)')
  a.add_argument('--pad', type=validate.option(Float(0.0, 1.0, open_hi=True)), default=0.25,
                 help='reflection padding of the flows and the photo, as a fraction of the '
                 'network size (official 0.25: 64 px at 256)')
  _add_appearance_args(a.add_argument_group('appearance (Algorithm 1, lines 10-17)'))
  a.add_argument('--control-steps', type=validate.option(Int(1, hi=100_000)), default=200,
                 help='Adam steps of the Eq. 12/13 latent optimisation')
  a.add_argument('--max-size', type=validate.option(Int(0)), default=0,
                 help='downscale the photo so that its longer side is at most this many pixels '
                 'before animating (default 0: its own resolution, as the official code; '
                 '--arrows stay in the photo\'s own pixels)')
  a.add_argument('--fps', type=validate.option(validate.FPS), default=None,
                 help='frame rate (default 30; 5 with --method image2gif: its 6 frames span '
                 'about a second)')
  a.add_argument('--flow-output', default=None, help='flow visualisation video path '
                 '(default: OUTPUT with _flow before the extension)')
  a.add_argument('--no-flow', action='store_true', help='do not write the flow video')
  a.add_argument('-q', '--quiet', action='store_true', help='no progress bar')
  landscape = tuple((act.dest, act.option_strings[0], act.default)
                    for act in a._actions  # pylint: disable=protected-access
                    if act.option_strings and act.dest not in IMAGE2GIF_OPTIONS + ('help',))
  a.set_defaults(func=cmd_animate, landscape_options=landscape)


def _add_appearance_args(ap):
  ap.add_argument('--appearance-workdir', default=None,
                  help=f'appearance training run (default {DEFAULT_APPEARANCE_RUN} when it '
                  'exists; otherwise motion only)')
  ap.add_argument('--motion-only', action='store_true', help='no appearance change')
  ap.add_argument('--appearance-only', action='store_true',
                  help='no motion: recolour the still photo only')
  ap.add_argument('--a-index', type=validate.option(Int(0)), default=None,
                  help='appearance codebook sequence (default: the latent LSTM when the run '
                  'has one, else a random --a-mix from --seed)')
  ap.add_argument('--a-mix', type=validate.option(validate.PROB), default=None,
                  help='official -az: a fraction t in [0, 1] choosing the appearance codebook '
                  'sequence int((N - 1) t)')
  ap.add_argument('--a-random', action='store_true',
                  help='a random codebook sequence even when a latent LSTM exists')
  ap.add_argument('--a-speed', type=validate.option(Float(0.0, 1.0, open_lo=True)), default=0.1,
                  help='appearance speed s_a: one appearance cycle spans at least int(1/s_a) '
                  'motion loops (official -as 0.1)')
  ap.add_argument('--a-normal', action='store_true',
                  help='cycle between E^A(photo) and z^A ~ N(0, I) from --seed (runs trained '
                  'with model.latent_reg=vae, wae or wae_gan)')
  ap.add_argument('--patch', default=None,
                  help='appearance control (Eq. 13): an image whose colours under '
                  '--patch-mask the animation should reach')
  ap.add_argument('--patch-mask', default=None, help='mask image: white where --patch applies')


def _add_sample(sub):
  sm = sub.add_parser('sample', help='GIFs from a Sync-DRAW run, from the prior or a caption')
  sm.add_argument('--workdir', required=True, help='a configs/syncdraw.py training run')
  sm.add_argument('--caption', default=None,
                  help='e.g. "the digit 3 is moving up and down" (runs trained with captions)')
  sm.add_argument('-o', '--output', required=True, help='.gif, .mp4, .png (animated) or a folder')
  sm.add_argument('--num', type=validate.option(Int(1, hi=1024)), default=1,
                  help='GIFs to generate, side by side')
  sm.add_argument('--seed', type=validate.option(validate.SEED), default=0)
  sm.add_argument('--fps', type=validate.option(validate.FPS), default=4.0)
  sm.add_argument('--attention', default=None,
                  help='also write the canvas + write-attention grid of every frame at every '
                  'step (Fig. 4) of the first GIF to this .png')
  sm.add_argument('-q', '--quiet', action='store_true', help='no progress on stderr')
  sm.set_defaults(func=cmd_sample)


def _add_datasets(sub):
  d = sub.add_parser('datasets', help='prepare a dataset (synthetic ones generate themselves)')
  d.add_argument('action', choices=['prepare'])
  d.add_argument('name', help='e.g. synthetic_timelapse/default, sky_timelapse/default')
  d.add_argument('--data-dir', default='~/tensorflow_datasets')
  d.add_argument('--manual-dir', default=None, help='folder with the raw files (real datasets)')
  d.set_defaults(func=cmd_datasets)


def build_parser():
  p = _Parser(prog='animgen', description='Animate photos and loop videos (JAX/Flax).')
  sub = p.add_subparsers(dest='command', required=True, parser_class=_Parser)
  _add_animate(sub)
  from animgen import convert
  convert.register(sub)
  from animgen.looper import command as loop_command
  loop_command.register(sub)
  from animgen.preference import command as prefs_command
  prefs_command.register(sub)
  _add_sample(sub)
  _add_datasets(sub)
  return p


def main(argv=None):
  runtime.tune_malloc()
  runtime.compilation_cache()
  with runtime.user_errors(hold_warnings=True):
    args = build_parser().parse_args(argv)
    args.func(args)
  return 0


if __name__ == '__main__':
  sys.exit(main())
