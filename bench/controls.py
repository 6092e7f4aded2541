"""How far the Animating Landscape controls steer trained networks (Sec. 6.4, Eqs. 12-13).

  python bench/controls.py --workdir RUN --appearance-workdir RUN [--photo data/photos/china.jpg]

Arrows (Eq. 12): for one horizontal arrow to the right and one to the left across the top
quarter of the photo (the sky of the shipped photo), z^M is optimised from the codebook mean as
`animgen animate --arrows` does; printed: the mean cosine between P^M's backward flow and the
arrow's backward direction on the arrow's pixels, at the start code and at the optimised code.
Patches (Eq. 13): a colour patch (--colour, default sunset orange) over the top quarter; z^A is
optimised from E^A(photo) as `animgen animate --patch` does; printed: the mean colour under the
mask of the re-coloured photo at E^A(photo) and at the optimised code, next to the patch colour.
"""
import argparse
import json
import os
import sys

from common import ROOT  # importing common also puts the repository on sys.path


def _mean_cos(flow, u, mask):
  import numpy as np
  f, u, m = np.asarray(flow)[0], np.asarray(u), np.asarray(mask) > 0
  cos = (f * u).sum(-1) / np.maximum(np.linalg.norm(f, axis=-1) * np.linalg.norm(u, axis=-1),
                                     1e-12)
  return float(cos[m].mean())


def arrows(photo, workdir, steps):
  import jax.numpy as jnp
  import numpy as np
  from animgen import animate
  model = animate.motion_model(workdir)
  predict, codebook, size = model.predict, model.codebook, model.size
  if codebook is None:
    raise SystemExit(f'{workdir} has no codebook_motion.npz: run python -m animgen.main '
                     f'--mode=finalize with its config first')
  h, w = photo.shape[:2]
  small = animate.network_input(photo, size)
  z0 = codebook.mean(0)
  y = 0.12 * h
  out = {}
  for name, (x0, x1) in {'right': (0.15 * w, 0.85 * w), 'left': (0.85 * w, 0.15 * w)}.items():
    arr = np.array([[x0, y, x1, y]], np.float32)
    u, m = animate.arrow_maps(arr, h, w, size)
    z, loss = animate.code_from_arrows(predict, small, arr, h, w, z0, steps=steps)
    out[name] = dict(cos_start=_mean_cos(predict(small, jnp.asarray(z0)[None]), u, m),
                     cos_optimised=_mean_cos(predict(small, jnp.asarray(z)[None]), u, m),
                     loss=loss)
  return out


def patch(photo, workdir, colour, steps):
  import jax.numpy as jnp
  import numpy as np
  from animgen import animate
  from animgen.ops import color
  model = animate.appearance_model(workdir)
  maps_fn, encode_fn, size = model.maps, model.encode, model.size
  small = animate.network_input(photo, size)
  target = jnp.broadcast_to(jnp.asarray(colour, jnp.float32) * 2.0 - 1.0, small.shape)
  mask = np.zeros((1, size, size, 1), np.float32)
  mask[:, :size // 4] = 1.0
  z_in = np.asarray(encode_fn(small))[0]
  z_hat, loss = animate.code_from_patch(maps_fn, small, target, jnp.asarray(mask), z_in,
                                        steps=steps)

  def under_mask(z):
    out = (np.asarray(color.color_transfer(maps_fn(small, jnp.asarray(z)[None]), small)) + 1) / 2
    return [round(float(v), 3) for v in out[0][mask[0, ..., 0] > 0].mean(0)]

  photo_mean = (np.asarray(small[0])[mask[0, ..., 0] > 0].mean(0) + 1) / 2
  return dict(photo=[round(float(v), 3) for v in photo_mean], at_input_code=under_mask(z_in),
              optimised=under_mask(z_hat), patch=list(colour), loss=loss)


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument('--workdir', required=True, help='motion training run')
  ap.add_argument('--appearance-workdir', required=True, help='appearance training run')
  ap.add_argument('--photo', default=os.path.join(ROOT, 'data/photos/china.jpg'))
  ap.add_argument('--colour', type=float, nargs=3, default=(0.9, 0.45, 0.25))
  ap.add_argument('--steps', type=int, default=200, help='Adam steps (animate --control-steps)')
  ap.add_argument('--json', default=None)
  args = ap.parse_args(argv)
  from animgen import media
  photo = media.read_image(args.photo)
  res = dict(arrows=arrows(photo, args.workdir, args.steps),
             patch=patch(photo, args.appearance_workdir, tuple(args.colour), args.steps))
  for name, r in res['arrows'].items():
    print(f'arrow {name:5s}: mean cos(P^M flow, arrow) {r["cos_start"]:+.3f} at the codebook '
          f'mean -> {r["cos_optimised"]:+.3f} optimised (Eq. 12 loss {r["loss"]:.3g})')
  p = res['patch']
  print(f'patch {p["patch"]}: mean colour under the mask {p["photo"]} in the photo, '
        f'{p["at_input_code"]} at E^A(photo), {p["optimised"]} optimised (Eq. 13 loss '
        f'{p["loss"]:.3g})')
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(res, f, indent=1)


if __name__ == '__main__':
  sys.exit(main())
