"""Same-machine PyTorch reference for bench/landscape.py (NOT part of animgen, not a test).

A reference re-expression, written for this benchmark from the published layer facts of the
official code (endo-yuki-t/Animating-Landscape), of the official motion training step:
ConditionalMotionNet (3 reflection-padded down convs with z tiled and concatenated before
each, 5 pre-activation InstanceNorm/LeakyReLU(0.1) residual blocks, U-Net skips, nearest x2
upsample + conv, tanh * 1/64) and the BicycleGAN resnet_128 motion encoder, a grid_sample
border warp, MSE + edge-weighted TV, Adam. It is not the official code (no code was copied);
it only has the same layer shapes and FLOPs, so that time and peak memory can be compared with
animgen on the same machine at the same moment. It runs the layers the plain way (concat z,
upsample then conv), as the official code does.

Needs torch, which animgen's `convert` extra installs (`pip install -e ".[convert]"`: torch
2.13.0 CPU); the script imports nothing from animgen.
  .venv/bin/python bench/torch_reference.py --batch 1 8            # stock glibc malloc
  MALLOC_ARENA_MAX=1 MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=2147483647 \
      MALLOC_TOP_PAD_=268435456 .venv/bin/python bench/torch_reference.py --batch 1 8
The second line is animgen's tuned allocator (`animgen.runtime.MALLOPT`, which the entry points
set with mallopt) as environment variables. Each batch size runs in a fresh subprocess (separate
peak RSS) that inherits the environment.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

try:
  import torch
  from torch import nn
  from torch.nn import functional as F
except ImportError:
  raise SystemExit('bench/torch_reference.py needs torch: pip install -e ".[convert]"') from None

NZ = 8          # motion code size
SIZE = 256      # frame size (the paper's)
FIELD = 128     # the encoder's input size (common motion field)


def _peak_rss():
  with open('/proc/self/status') as f:
    for line in f:
      if line.startswith('VmHWM:'):
        return int(line.split()[1]) * 1024
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ----------------------------------------------------------------------------- networks
class InstanceNorm(nn.Module):
  def __init__(self, c, eps=1e-9):
    super().__init__()
    self.scale = nn.Parameter(torch.rand(c))
    self.shift = nn.Parameter(torch.zeros(c))
    self.eps = eps

  def forward(self, x):
    mean = x.mean((2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean((2, 3), keepdim=True)
    y = (x - mean) * torch.rsqrt(var + self.eps)
    return y * self.scale[None, :, None, None] + self.shift[None, :, None, None]


def conv(cin, cout, k, s=1):
  return nn.Sequential(nn.ReflectionPad2d(k // 2), nn.Conv2d(cin, cout, k, s))


def cat_z(x, z):
  return torch.cat([x, z[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])], 1)


class Res(nn.Module):
  def __init__(self, c):
    super().__init__()
    self.n1, self.c1 = InstanceNorm(c), conv(c, c, 3)
    self.n2, self.c2 = InstanceNorm(c), conv(c, c, 3)

  def forward(self, x):
    h = self.c1(F.leaky_relu(self.n1(x), 0.1))
    return x + self.c2(F.leaky_relu(self.n2(h), 0.1))


class MotionNet(nn.Module):
  def __init__(self):
    super().__init__()
    self.c1 = conv(3 + NZ, 128, 5, 2)
    self.c2 = conv(128 + NZ, 256, 3, 2)
    self.c3 = conv(256 + NZ, 512, 3, 2)
    self.n2, self.n3 = InstanceNorm(256), InstanceNorm(512)
    self.res = nn.Sequential(*[Res(512) for _ in range(5)])
    self.u1, self.u2, self.u3 = conv(1024, 256, 3), conv(512, 128, 3), conv(256, 2, 5)
    self.un1, self.un2 = InstanceNorm(256), InstanceNorm(128)

  def forward(self, x, z):
    lr = lambda t: F.leaky_relu(t, 0.1)
    up = lambda t: F.interpolate(t, scale_factor=2, mode='nearest')
    h1 = lr(self.c1(cat_z(x, z)))
    h2 = lr(self.n2(self.c2(cat_z(h1, z))))
    h3 = lr(self.n3(self.c3(cat_z(h2, z))))
    h = self.res(h3)
    h = lr(self.un1(self.u1(up(torch.cat([h, h3], 1)))))
    h = lr(self.un2(self.u2(up(torch.cat([h, h2], 1)))))
    h = self.u3(up(torch.cat([h, h1], 1)))
    return torch.tanh(h) / 64.0


class EncBlock(nn.Module):
  def __init__(self, cin, cout):
    super().__init__()
    self.b1, self.c1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cin, 3, 1, 1)
    self.b2, self.c2 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, 1, 1)
    self.sc = nn.Conv2d(cin, cout, 1)

  def forward(self, x):
    h = self.c1(F.leaky_relu(self.b1(x), 0.2))
    h = F.avg_pool2d(self.c2(F.leaky_relu(self.b2(h), 0.2)), 2)
    return h + self.sc(F.avg_pool2d(x, 2))


class Encoder(nn.Module):
  def __init__(self):
    super().__init__()
    self.c = nn.Conv2d(2, 64, 4, 2, 1)
    self.blocks = nn.Sequential(EncBlock(64, 128), EncBlock(128, 192), EncBlock(192, 256))
    self.mu, self.logvar = nn.Linear(256, NZ), nn.Linear(256, NZ)

  def forward(self, x):
    h = F.leaky_relu(self.blocks(self.c(x)), 0.2).mean((2, 3))
    return self.mu(h), self.logvar(h)


# ----------------------------------------------------------------------------- the step
def _loss(flow, f0, f1, ident):
  """MSE of f0 warped by the backward flow against f1 + edge-weighted TV of the flow."""
  warped = F.grid_sample(f0, ident + flow.permute(0, 2, 3, 1), padding_mode='border',
                         align_corners=True)
  l_p = ((warped - f1) ** 2).mean()
  tv = 0
  for d in (2, 3):
    df = flow.diff(dim=d).abs().sum(1)
    dg = f1.diff(dim=d).abs().sum(1)
    tv = tv + (torch.exp(-dg / 0.1) * df).mean()
  return l_p + tv


def reference_step(batch):
  """Seeded networks, Adam and random frames -> (train step, forward pass) closures; the train
  step stores the predicted flow as the next common motion field, as Algorithm 2 does."""
  torch.manual_seed(0)
  net, enc = MotionNet(), Encoder()
  params = list(net.parameters()) + list(enc.parameters())
  opt = torch.optim.Adam(params, lr=1e-4, betas=(0.5, 0.999))
  f0 = torch.rand(batch, 3, SIZE, SIZE) * 2 - 1
  f1 = torch.rand(batch, 3, SIZE, SIZE) * 2 - 1
  field = torch.zeros(batch, 2, FIELD, FIELD)
  ys, xs = torch.meshgrid(torch.linspace(-1, 1, SIZE), torch.linspace(-1, 1, SIZE), indexing='ij')
  ident = torch.stack([xs, ys], -1)[None]

  def step():
    nonlocal field
    opt.zero_grad(set_to_none=True)
    z, _ = enc(field)
    flow = net(f0, z)
    loss = _loss(flow, f0, f1, ident)
    loss.backward()
    opt.step()
    field = F.interpolate(flow.detach(), size=(FIELD, FIELD), mode='bilinear',
                          align_corners=False)
    return float(loss.detach())

  def forward():
    with torch.no_grad():
      z, _ = enc(field)
      return net(f0, z)

  return step, forward


def _timed(fn, n):
  """n calls of fn -> (wall seconds, user+sys CPU seconds) per call."""
  times, cpu = [], []
  for _ in range(n):
    t0, c0 = time.perf_counter(), os.times()
    fn()
    c1 = os.times()
    times.append(time.perf_counter() - t0)
    cpu.append(c1.user + c1.system - c0.user - c0.system)
  return times, cpu


def _wall_times(fn, n):
  times = []
  for _ in range(n):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return times


def child(batch, steps, warmup):
  step, forward = reference_step(batch)
  for _ in range(warmup):
    step()
  times, cpu = _timed(step, steps)
  ftimes = _wall_times(forward, steps)
  med = lambda xs: sorted(xs)[len(xs) // 2]
  return {'batch': batch, 'torch': torch.__version__, 'threads': torch.get_num_threads(),
          'times_s': times, 's_per_step_median': med(times), 's_per_step_min': min(times),
          'cpu_s_per_step_median': med(cpu), 'forward_s_median': med(ftimes),
          'peak_rss_bytes': _peak_rss()}


def main():
  p = argparse.ArgumentParser(description='PyTorch reference motion train step (same machine).')
  p.add_argument('--batch', type=int, nargs='+', default=[1, 8])
  p.add_argument('--steps', type=int, default=5)
  p.add_argument('--warmup', type=int, default=2)
  p.add_argument('--json')
  p.add_argument('--_child', type=int, help=argparse.SUPPRESS)
  args = p.parse_args()
  if args._child is not None:
    r = child(args._child, args.steps, args.warmup)
    print(json.dumps(r))
    return
  results = []
  malloc = ' '.join(f'{k}={v}' for k, v in sorted(os.environ.items()) if k.startswith('MALLOC_'))
  print(f'torch reference, malloc: {malloc or "(glibc defaults)"}')
  print(f'{"batch":>5} {"s/step med":>10} {"min":>7} {"cpu s/step":>10} {"fwd s":>7} '
        f'{"peak RSS":>9}')
  for b in args.batch:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), '--_child', str(b),
                          '--steps', str(args.steps), '--warmup', str(args.warmup)],
                         stdout=subprocess.PIPE, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r['malloc'] = malloc
    results.append(r)
    print(f'{b:>5} {r["s_per_step_median"]:>10.3f} {r["s_per_step_min"]:>7.3f} '
          f'{r["cpu_s_per_step_median"]:>10.2f} {r["forward_s_median"]:>7.3f} '
          f'{r["peak_rss_bytes"] / 2**30:>7.2f}Gi', flush=True)
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(results, f, indent=1)


if __name__ == '__main__':
  main()
