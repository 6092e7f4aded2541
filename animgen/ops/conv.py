"""Exact fast convolution kernels for XLA:CPU (NHWC inputs, HWIO kernels), in pure jnp.

Every function here computes exactly what a plain convolution (`conv2d`) computes, rewritten
into the shapes XLA:CPU runs fastest: patches @ kernel-matrix GEMMs, Winograd F(2x2, 3x3),
F(2x2, 2x2) and F(4x4, 3x3), sums of shifted 1x1 taps, and the phase decomposition of a nearest
x2 upsample followed by a 3x3 conv. Their custom VJPs save no patch- or tile-sized residuals.
`fast_kernels_enabled` says on which backends models should use them.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np


def fast_kernels_enabled(backend: str | None = None) -> bool:
  """Whether models take these kernels on `backend` (default: jax.default_backend())."""
  # CPU only: the kernels were measured against XLA:CPU; on GPU/TPU they have not been measured.
  return (backend or jax.default_backend()) == 'cpu'


def conv2d(x, kernel, stride=1, padding='VALID'):
  """The plain convolution (XLA's): x [B, H, W, Cin], kernel [k, k, Cin, Cout] -> NHWC."""
  return jax.lax.conv_general_dilated(
      x, kernel.astype(x.dtype), (stride, stride), padding,
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


def _patches(x: jax.Array, k: int, stride: int) -> jax.Array:
  """[B, H, W, C] -> [B, Ho, Wo, k*k*C] VALID patches, (row, col, channel) order as HWIO."""
  _, h, w, _ = x.shape
  ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
  return jnp.concatenate(
      [x[:, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
       for i in range(k) for j in range(k)], axis=-1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv2d_gemm(x, kernel, stride):
  k, _, cin, cout = kernel.shape
  return jnp.einsum('bhwk,ko->bhwo', _patches(x, k, stride), kernel.reshape(k * k * cin, cout))


def _conv2d_gemm_fwd(x, kernel, stride):
  return _conv2d_gemm(x, kernel, stride), (x, kernel)


def _conv2d_gemm_bwd(stride, res, g):
  x, kernel = res
  k, _, cin, cout = kernel.shape
  dx = jax.vjp(lambda t: conv2d(t, kernel, stride), x)[1](g)[0]  # XLA's input-gradient conv
  # XLA:CPU drops optimization barriers before scheduling and would rebuild every layer's
  # patches early in the backward pass (all live at once: 1.4 GiB at batch 8). Adding 0 * g
  # (not folded for floats; x + 0 == x exactly) makes them wait for this layer's gradient.
  x = x + (g.reshape(-1)[0] * 0).astype(x.dtype)
  dw = jnp.einsum('bhwk,bhwo->ko', _patches(x, k, stride), g)
  return dx, dw.reshape(kernel.shape)


_conv2d_gemm.defvjp(_conv2d_gemm_fwd, _conv2d_gemm_bwd)


# Winograd (Lavin & Gray 2016): Y = A^T [(G g G^T) o (B^T d B)] A per m x m output tile, with
# d the n x n input tile (n = m + k - 1) at stride m and g the k x k kernel. F(2x2, 3x3): 16
# products per 4 outputs instead of 36; F(4x4, 3x3): 36 per 16; F(2x2, 2x2) (the phase
# convolutions of an upsampling 3x3 conv): 9 instead of 16. `flip` (m = 2): the flipped kernel's
# transform is U with these positions swapped (G J = P G), so the input gradient reuses U with
# B^T's rows and A^T's columns permuted; without it the flipped kernel is transformed anew.
_WINO = {
    (2, 3): dict(bt=((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1)),
                 g=((1, 0, 0), (.5, .5, .5), (.5, -.5, .5), (0, 0, 1)),
                 at=((1, 1, 1, 0), (0, 1, -1, -1)), flip=(3, 1, 2, 0)),
    (2, 2): dict(bt=((1, -1, 0), (0, 1, 0), (0, -1, 1)), g=((1, 0), (1, 1), (0, 1)),
                 at=((1, 1, 0), (0, 1, 1)), flip=(2, 1, 0)),
    # points 0, 1, -1, 2, -2, infinity (Lavin & Gray, Sec. 4.2)
    (4, 3): dict(bt=((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
                     (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1)),
                 g=((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
                    (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1)),
                 at=((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0),
                     (0, 1, -1, 8, -8, 1))),
}
WINOGRAD_TILE = {3: 2, 2: 2}   # output tile m per kernel size k
WINOGRAD_MIN_CHANNELS = 128  # below this the tile transforms cost more than the GEMM saves


def _combine(mat, parts):
  """[sum_k mat[i][k] * parts[k] for each row i], with the 0 / +-1 entries as skips / adds."""
  out = []
  for row in mat:
    acc = None
    for m, p in zip(row, parts):
      if m == 0:
        continue
      t = p if m == 1 else (-p if m == -1 else p * m)
      acc = t if acc is None else acc + t
    out.append(acc)
  return out


def _wino_tiles(x, th, tw, bt, m):
  """x [B, m th + n - m, m tw + n - m, C] -> V [n^2, B * th * tw, C]: B^T d B of every n x n
  tile at stride m."""
  n = len(bt)
  rows = _combine(bt, [x[:, r:r + m * th:m] for r in range(n)])
  v = [c for a in rows for c in _combine(bt, [a[:, :, s:s + m * tw:m] for s in range(n)])]
  return jnp.stack(v).reshape(n * n, -1, x.shape[-1])


def _wino_kernel(kernel, g):
  """k x k kernel [k, k, Cin, Cout] -> U [n^2, Cin, Cout] = G g G^T, as one (G kron G) dot."""
  k = kernel.shape[0]
  gg = np.kron(np.asarray(g, np.float64), np.asarray(g, np.float64))      # [n^2, k^2]
  u = jnp.dot(jnp.asarray(gg, kernel.dtype), kernel.reshape(k * k, -1))
  return u.reshape(len(gg), *kernel.shape[2:])


def _wino_conv(x, u, bt, at, m, spec='pnc,pco->pno'):
  """Winograd tiles of x [B, H, W, C] (output size a multiple of m) times u [n^2, ...]."""
  b, h, w, _ = x.shape
  n = len(bt)
  th, tw = (h - n + m) // m, (w - n + m) // m
  prod = jnp.einsum(spec, _wino_tiles(x, th, tw, bt, m), u).reshape(n, n, b, th, tw, -1)
  rows = _combine(at, [prod[a] for a in range(n)])                  # rows[i]: [n, B, th, tw, C]
  y = [_combine(at, [r[c] for c in range(n)]) for r in rows]        # y[i][j]: [B, th, tw, C]
  y = jnp.stack([jnp.stack(yi, 3) for yi in y], 2)                  # [B, th, m, tw, m, C]
  return y.reshape(b, m * th, m * tw, -1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_winograd_tiled(x, kernel, m):
  """VALID k x k conv (k = 2 or 3, stride 1), output height and width multiples of m."""
  t = _WINO[(m, kernel.shape[0])]
  return _wino_conv(x, _wino_kernel(kernel, t['g']), t['bt'], t['at'], m)


def _conv_winograd_tiled_fwd(x, kernel, m):
  return _conv_winograd_tiled(x, kernel, m), (x, kernel)


def _conv_winograd_tiled_bwd(m, res, g):
  x, kernel = res
  k = kernel.shape[0]
  t = _WINO[(m, k)]
  n = m + k - 1
  # As for the tiles below: without the dependence on g, XLA merges this U with the forward's
  # and keeps every layer's U (16 MiB per 512-channel conv) live from the forward pass on.
  kernel_g = kernel + (g.reshape(-1)[0] * 0).astype(kernel.dtype)
  # Input gradient: the full convolution of g with the flipped, transposed kernel.
  h, w = x.shape[1:3]                              # pad up to a multiple of m, then crop
  gp = jnp.pad(g, ((0, 0), (k - 1, k - 1 + (-h) % m), (k - 1, k - 1 + (-w) % m), (0, 0)))
  if 'flip' in t:
    perm = t['flip']
    bt_flip = tuple(t['bt'][a] for a in perm)
    at_flip = tuple(tuple(r[a] for a in perm) for r in t['at'])
    dx = _wino_conv(gp, _wino_kernel(kernel_g, t['g']), bt_flip, at_flip, m, 'pno,pco->pnc')
  else:
    flipped = jnp.transpose(kernel_g[::-1, ::-1], (0, 1, 3, 2))
    dx = _wino_conv(gp, _wino_kernel(flipped, t['g']), t['bt'], t['at'], m)
  dx = dx[:, :h, :w]
  # Kernel gradient: G^T [sum over tiles of (B^T d B) x (A g_tile A^T)] G.
  _, ho, wo, cout = g.shape
  x = x + (g.reshape(-1)[0] * 0).astype(x.dtype)   # keep the tiles out of the forward pass
  a_mat = tuple(zip(*t['at']))                     # A = (A^T)^T, n x m
  inner = [_combine(a_mat, [g[:, i::m, j::m] for j in range(m)]) for i in range(m)]
  dm = [_combine(a_mat, [inner[i][c] for i in range(m)]) for c in range(n)]   # dm[b'][a]
  dm = jnp.stack([dm[c][a] for a in range(n) for c in range(n)]).reshape(n * n, -1, cout)
  du = jnp.einsum('pnc,pno->pco', _wino_tiles(x, ho // m, wo // m, t['bt'], m), dm)
  gg = np.kron(np.asarray(t['g'], np.float64), np.asarray(t['g'], np.float64)).T
  dk = jnp.dot(jnp.asarray(gg, kernel.dtype), du.reshape(n * n, -1))   # G^T dU G
  return dx, dk.reshape(kernel.shape)


_conv_winograd_tiled.defvjp(_conv_winograd_tiled_fwd, _conv_winograd_tiled_bwd)


def winograd_tile(k: int, x_shape, cout: int) -> int:
  """m of F(m x m, k x k) for a conv of x [B, H, W, Cin]: 4 for a 3x3 conv over enough pixels,
  else WINOGRAD_TILE[k]. F(4x4, 3x3) takes 2.25 products per output instead of 4, but its 36
  transformed kernels hold 20 Cin Cout more floats than F(2x2)'s 16, while its tiles hold
  1.75 B Ho Wo Cin fewer: it pays in memory once 1.75 B Ho Wo > 20 Cout. Paper-size step
  (bench/README.md): F(4x4) takes batch 8 (res blocks at 32x32) from 8.7-8.9 to 7.1-7.2 s;
  batch 1 is no faster with it and its peak RSS would rise from 1.26 to 1.59 GiB, so it keeps
  F(2x2)."""
  b, h, w, _ = x_shape
  if k == 3 and 1.75 * b * (h - 2) * (w - 2) > 20 * cout:
    return 4
  return WINOGRAD_TILE[k]


def conv_winograd(x, kernel, m=None):
  """Exactly conv2d(x, kernel) for a 2x2 or 3x3 kernel (VALID, stride 1), by Winograd
  F(m x m, k x k); m defaults to WINOGRAD_TILE[k]."""
  k = kernel.shape[0]
  m = m or WINOGRAD_TILE[k]
  ho, wo = x.shape[1] - k + 1, x.shape[2] - k + 1
  xp = jnp.pad(x, ((0, 0), (0, (-ho) % m), (0, (-wo) % m), (0, 0)))
  return _conv_winograd_tiled(xp, kernel, m)[:, :ho, :wo]


def conv2d_fast(x, kernel, stride=1):
  """Exactly conv2d(x, kernel, stride) (VALID), computed the way XLA:CPU runs fastest.

  A 2x2 or 3x3 stride-1 conv with at least WINOGRAD_MIN_CHANNELS inputs and outputs (the res
  blocks and the phase convolutions of the up-convolutions at the paper's widths) runs by
  Winograd F(2x2, k x k) or, for large 3x3 convs, F(4x4, 3x3) (conv_winograd, winograd_tile):
  2.25x / 1.78x / 4x fewer multiplications, all of them in one batched dot, at float32 rounding
  on par with the other paths (F(4x4, 3x3): ~4e-6 relative RMS at 512 channels). Otherwise:
  XLA:CPU's own convolution kernels reach 40-80 GFLOP/s here on the forward and weight-gradient
  convolutions, its dot 90-120: the forward runs as patches @ kernel-matrix and the weight
  gradient as patches^T @ grad (patches rebuilt in the backward pass, so only the input is kept,
  as for a convolution); the input gradient stays XLA's transposed convolution, which is as fast
  as the dot plus the patch scatter-add and needs no patch-sized buffer. A stride-1 conv with
  few outputs (Cout * k * k <= Cin), or with fewer outputs than inputs where Winograd does not
  apply, instead runs as a 1x1 dot to Cout * k * k maps and a sum of k * k shifted slices (_taps,
  _shift_sum): the same multiplications, and its per-pixel buffer (Cout * k * k) is smaller than
  the patches (Cin * k * k) and their transpose in the backward (Image2GIF's last deconv, 64 ->
  4 x 3 phases: 1.34 -> 0.78 GiB of XLA scratch at batch 8, bench/README.md)."""
  k, _, cin, cout = kernel.shape
  if k == 1 and stride == 1:
    return jnp.einsum('bhwc,co->bhwo', x, kernel[0, 0])
  winograd = k in WINOGRAD_TILE and stride == 1 and min(cin, cout) >= WINOGRAD_MIN_CHANNELS
  if stride == 1 and (cout * k * k <= cin or (cout < cin and not winograd)):
    return _shift_sum(_taps(x, kernel), k, x.shape[1] - k + 1, x.shape[2] - k + 1)
  if winograd:
    return conv_winograd(x, kernel.astype(x.dtype), winograd_tile(k, x.shape, cout))
  return _conv2d_gemm(x, kernel.astype(x.dtype), stride)


def _taps(x, kernel):
  """x [B, H, W, Cin] -> [B, H, W, k*k, Cout]: every tap's contribution at every pixel."""
  k, _, cin, cout = kernel.shape
  wt = jnp.transpose(kernel.astype(x.dtype), (2, 0, 1, 3)).reshape(cin, k * k * cout)
  y = jnp.einsum('bhwc,cn->bhwn', x, wt)
  return y.reshape(x.shape[:3] + (k * k, cout))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _shift_sum(t, k, ho, wo):
  """t [B, H, W, k*k, Cout] -> [B, Ho, Wo, Cout]: sum over taps (i, j) of t[:, i:, j:, (i, j)]."""
  out = None
  for i in range(k):
    for j in range(k):
      s = t[:, i:i + ho, j:j + wo, i * k + j]
      out = s if out is None else out + s
  return out


def _shift_sum_fwd(t, k, ho, wo):
  return _shift_sum(t, k, ho, wo), t.shape


def _shift_sum_bwd(k, ho, wo, shape, g):
  # One gather-like pass (the default transpose pads every tap to the full size separately).
  _, h, w = shape[:3]
  gp = jnp.pad(g, ((0, 0), (k - 1, h - ho), (k - 1, w - wo), (0, 0)))
  return (jnp.stack([gp[:, k - 1 - i:k - 1 - i + h, k - 1 - j:k - 1 - j + w]
                     for i in range(k) for j in range(k)], axis=3),)


_shift_sum.defvjp(_shift_sum_fwd, _shift_sum_bwd)


def upsample_conv_reflect_small_out(x, kernel, bias, pad):
  """Exactly conv(reflect_pad(upsample_nearest(x, 2), pad), kernel) + bias for few outputs.

  A per-pixel linear map commutes with nearest upsampling and reflection padding, so each tap's
  contribution is computed at the input resolution (1/4 of the FLOPs, one well-shaped dot),
  then upsampled, padded and summed over the k*k shifted taps. x: [B, H, W, Cin]."""
  k = kernel.shape[0]
  b, h, w, _ = x.shape
  t = _taps(x, kernel)                                     # [B, H, W, k*k, Cout]
  t = jnp.broadcast_to(t[:, :, None, :, None], (b, h, 2, w, 2) + t.shape[3:])
  t = t.reshape((b, 2 * h, 2 * w) + t.shape[5:])
  t = jnp.pad(t, ((0, 0), (pad, pad), (pad, pad), (0, 0), (0, 0)), mode='reflect')
  ho, wo = 2 * h + 2 * pad - k + 1, 2 * w + 2 * pad - k + 1
  return _shift_sum(t, k, ho, wo) + bias.astype(x.dtype)


# Row/column tap matrices of a nearest x2 upsample followed by a 3x3 conv, per output phase:
# phase 0 reads input rows (i-1, i) with weights (W0, W1+W2), phase 1 rows (i, i+1) with
# (W0+W1, W2).
_PHASE_TAPS = jnp.array([[[1., 0., 0.], [0., 1., 1.]],
                         [[1., 1., 0.], [0., 0., 1.]]])


def upsample2_conv3x3(x: jax.Array, kernel: jax.Array, bias: jax.Array,
                      padding: str = 'reflect') -> jax.Array:
  """Exactly conv3x3(pad(upsample_nearest(x, 2), 1)) + bias, at 16/36 of the FLOPs, with
  reflection (padding='reflect') or zero (padding='zeros') padding.

  Padding a nearest-upsampled map by 1 equals upsampling the input padded by 1 (edge padding
  for reflection, zeros for zeros) and cropping 1, and each of the four output phases is a 2x2
  conv of the padded input; the four are computed as one 2x2 conv with 4 * Cout outputs and
  interleaved (depth-to-space). x: [B, H, W, Cin] -> [B, 2H, 2W, Cout].
  """
  b, h, w, _ = x.shape
  cout = kernel.shape[-1]
  taps = _PHASE_TAPS.astype(kernel.dtype)
  k2 = jnp.einsum('apk,bql,klio->pqiabo', taps, taps, kernel)  # [2, 2, Cin, 2, 2, Cout]
  k2 = k2.reshape(2, 2, kernel.shape[2], 4 * cout)
  mode = {'reflect': 'edge', 'zeros': 'constant'}[padding]
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode=mode)
  y = conv2d_fast(xp, k2)  # [B, H+1, W+1, 4*Cout]
  y = y.reshape(b, h + 1, w + 1, 2, 2, cout)
  rows = [jnp.stack([y[:, a:a + h, c:c + w, a, c] for c in range(2)], axis=3) for a in range(2)]
  out = jnp.stack(rows, axis=2)  # [B, H, 2, W, 2, Cout]
  return out.reshape(b, 2 * h, 2 * w, cout) + bias.astype(x.dtype)




def _input_phase_kernel(kernel):
  """The [k, k, I, O] kernel of conv2d(x, kernel, 2, 'SAME') on even H, W -> (the [n, n, O, 4 I]
  kernel of one stride-1 conv of the output gradient to the input's four phases, its padding).

  With 'SAME' the input is padded by lo = (k - 2) // 2 in front, so y[m] reads x[2 m + t - lo]
  for the taps t; x[2 a + r] therefore receives g[a + e] through the tap t = r + lo - 2 e."""
  k, _, cin, cout = kernel.shape
  lo = (k - 2) // 2
  es = range(-((k - 1 - lo) // 2), (1 + lo) // 2 + 1)
  zero = jnp.zeros((cout, cin), kernel.dtype)
  def tap(ty, tx):
    return kernel[ty, tx].T if 0 <= ty < k and 0 <= tx < k else zero
  k_phase = jnp.stack([jnp.stack([
      jnp.concatenate([tap(ry + lo - 2 * ey, rx + lo - 2 * ex) for ry in (0, 1) for rx in (0, 1)],
                      axis=-1)
      for ex in es]) for ey in es])
  return k_phase, (-es[0], es[-1])


@jax.custom_vjp
def conv2d_s2_same(x, kernel):
  """Exactly conv2d(x, kernel, 2, 'SAME'). For odd k and even H, W the input gradient is
  computed as one stride-1 conv of the output gradient to the four input phases and a
  depth-to-space (as Deconv computes a transposed conv) instead of XLA's transposed conv,
  which XLA:CPU runs at ~0.25 GFLOP/s where the output is 4x4 (bench/README.md, Image2GIF)."""
  return conv2d(x, kernel, 2, 'SAME')


def _conv2d_s2_same_fwd(x, kernel):
  return conv2d_s2_same(x, kernel), (x, kernel)


def _conv2d_s2_same_bwd(res, g):
  x, kernel = res
  b, ho, wo, _ = g.shape
  cin = kernel.shape[2]
  if kernel.shape[0] % 2 == 0 or x.shape[1] % 2 or x.shape[2] % 2:
    return jax.vjp(lambda a, w: conv2d(a, w, 2, 'SAME'), x, kernel)[1](g)
  dw = jax.vjp(lambda w: conv2d(x, w, 2, 'SAME'), kernel)[1](g)[0]   # XLA's weight gradient
  k_phase, (lo, hi) = _input_phase_kernel(kernel.astype(g.dtype))
  dx = conv2d(jnp.pad(g, ((0, 0), (lo, hi), (lo, hi), (0, 0))), k_phase)   # [B, Ho, Wo, 4 I]
  dx = dx.reshape(b, ho, wo, 2, 2, cin).transpose(0, 1, 3, 2, 4, 5).reshape(b, 2 * ho, 2 * wo, cin)
  return dx.astype(x.dtype), dw


conv2d_s2_same.defvjp(_conv2d_s2_same_fwd, _conv2d_s2_same_bwd)
