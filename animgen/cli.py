"""`animgen` console script.

  animgen animate PHOTO -o OUT.(mp4|gif|png|folder) [--workdir RUN] [options]
  animgen datasets prepare NAME [--data-dir DIR] [--manual-dir DIR]

Bad input prints one line and exits 2; outputs are written atomically.
"""
import argparse
import os
import sys

from animgen import runtime
from animgen.errors import InputError

VIDEO_EXTS = ('.mp4', '.m4v', '.mov', '.mkv', '.gif', '.png', '.apng', '')


class _Parser(argparse.ArgumentParser):
  def error(self, message):  # argparse's errors are user errors too: one line, exit 2
    raise InputError(f'{message} (see {self.prog} --help)')


def _check_output(path: str, flag: str = '-o'):
  ext = os.path.splitext(path.rstrip('/'))[1].lower()
  if ext not in VIDEO_EXTS:
    raise InputError(f'{flag} {path}: unknown extension {ext}; use .mp4, .gif, .png or a folder')
  parent = os.path.dirname(os.path.abspath(path.rstrip('/'))) or '.'
  if os.path.exists(parent) and not os.access(parent, os.W_OK):
    raise InputError(f'{flag} {path}: folder {parent} is not writable')


def _flow_path(out: str) -> str:
  stem, ext = os.path.splitext(out.rstrip('/'))
  return f'{stem}_flow{ext or ""}'


def cmd_animate(args):
  """Animating Landscape, Algorithm 1 (motion): photo -> looping animation at its resolution."""
  from animgen import animate, media
  for out in args.output:
    _check_output(out)
  if args.flow_output:
    _check_output(args.flow_output, '--flow-output')
  if args.frames < 2:
    raise InputError(f'--frames {args.frames}: need at least 2 frames')
  loop = None if args.no_loop else (args.loop_frames or (args.frames + 3) // 2)  # 199 -> 101
  image = media.read_image(args.image)
  predict, codebook, config, method, state = animate.load_motion_run(args.workdir)
  if codebook is None:
    raise InputError(f'no motion codebook in {args.workdir}: let training finish, or build it '
                     'with python -m animgen.main --mode=finalize --config=CONFIG '
                     f'--workdir={args.workdir}')
  z = animate.choose_code(codebook, args.z_index, args.z_mix, args.seed)
  frames, flows = animate.animate_motion(
      predict, image, z, config.image_size, args.frames, speed=args.speed,
      pad_fraction=args.pad, loop_length=loop, progress=not args.quiet)
  for out in args.output:
    media.write_video(out, frames, fps=args.fps)
  outputs = list(args.output)
  if not args.no_flow and len(flows):
    import jax.numpy as jnp
    from animgen.ops import flow_viz
    viz = flow_viz.flow_to_rgb(jnp.asarray(flows))
    flow_out = args.flow_output or _flow_path(args.output[0])
    media.write_video(flow_out, viz, fps=args.fps)
    outputs.append(flow_out)
  h, w = frames.shape[1:3]
  print(f'animgen: wrote {len(frames)} frames at {w}x{h}: {", ".join(outputs)}')


def cmd_datasets(args):
  from animgen import input_pipeline
  builder = input_pipeline.prepare(args.name, args.data_dir, args.manual_dir)
  for split, info in builder.info.splits.items():
    print(f'{args.name} {split}: {info.num_examples} examples in {builder.data_dir}')


def build_parser():
  p = _Parser(prog='animgen', description='Animate photos and loop videos (JAX/Flax).')
  sub = p.add_subparsers(dest='command', required=True, parser_class=_Parser)

  a = sub.add_parser('animate', help='photo -> looping animation (Animating Landscape)')
  a.add_argument('image', help='input photo (any size, grey/RGB/RGBA, 8 or 16 bit)')
  a.add_argument('-o', '--output', required=True, action='append',
                 help='.mp4, .gif, .png (animated) or a folder; repeat for several formats')
  a.add_argument('--workdir', default='runs/landscape',
                 help='training run with checkpoints and codebook (default runs/landscape)')
  a.add_argument('--frames', type=int, default=199, help='frames to generate (official 199)')
  a.add_argument('--loop-frames', type=int, default=None,
                 help="length of the cross-faded loop (default (frames + 3) // 2: 101 for 199)")
  a.add_argument('--no-loop', action='store_true', help='write the generated frames unlooped')
  a.add_argument('--speed', type=float, default=0.2, help='motion speed s_m (official 0.2)')
  g = a.add_mutually_exclusive_group()
  g.add_argument('--z-index', type=int, default=None, help='motion codebook row')
  g.add_argument('--z-mix', type=float, default=None,
                 help='fractional codebook row, interpolating neighbouring rows')
  a.add_argument('--seed', type=int, default=None, help='random codebook row from this seed')
  a.add_argument('--pad', type=float, default=0.25, help='reflection padding of the net input')
  a.add_argument('--fps', type=float, default=30.0)
  a.add_argument('--flow-output', default=None, help='flow visualisation video path '
                 '(default: OUTPUT with _flow before the extension)')
  a.add_argument('--no-flow', action='store_true', help='do not write the flow video')
  a.add_argument('-q', '--quiet', action='store_true', help='no progress bar')
  a.set_defaults(func=cmd_animate)

  d = sub.add_parser('datasets', help='prepare a dataset (synthetic ones generate themselves)')
  d.add_argument('action', choices=['prepare'])
  d.add_argument('name', help='e.g. synthetic_timelapse/default, sky_timelapse/default')
  d.add_argument('--data-dir', default='~/tensorflow_datasets')
  d.add_argument('--manual-dir', default=None, help='folder with the raw files (real datasets)')
  d.set_defaults(func=cmd_datasets)
  return p


def main(argv=None):
  runtime.configure()
  with runtime.user_errors():
    args = build_parser().parse_args(argv)
    args.func(args)
  return 0


if __name__ == '__main__':
  sys.exit(main())
