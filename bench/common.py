"""Helpers shared by the benchmarks: peak memory from /proc, per-variant child processes, and the
trainer's compiled train step with its timing."""
import argparse
import json
import os
import resource
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)


def proc_status(key: str) -> int:
  """A /proc/self/status size field (e.g. VmHWM) in bytes; 0 where /proc is missing."""
  try:
    with open('/proc/self/status') as f:
      for line in f:
        if line.startswith(key + ':'):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return 0


def peak_rss() -> int:
  return max(proc_status('VmHWM'), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def run_child(script: str, args: list[str]) -> tuple[dict | None, str]:
  """Runs `script --child ...` in a fresh process (its own peak memory); the child prints one
  'RESULT <json>' line. Returns (result or None, last stderr line)."""
  r = subprocess.run([sys.executable, os.path.abspath(script)] + args, capture_output=True,
                     text=True, cwd=ROOT)
  line = [l for l in r.stdout.splitlines() if l.startswith('RESULT ')]
  err = (r.stderr.strip().splitlines() or [''])[-1]
  if r.returncode < 0:  # e.g. -9: killed, typically by the kernel's out-of-memory killer
    err = f'killed by signal {-r.returncode} (out of memory?) {err}'.strip()
  return (json.loads(line[0][7:]) if line else None), err


def time_compiled(compiled, state, batch, key, steps: int, warmup: int):
  """Runs a compiled, state-donating train step: (final state, metrics, per-step seconds)."""
  import time
  import jax
  for _ in range(warmup):
    state, metrics = compiled(state, batch, key)
    jax.block_until_ready(metrics)
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    state, metrics = compiled(state, batch, key)
    jax.block_until_ready((state, metrics))
    times.append(time.perf_counter() - t0)
  return state, metrics, times


def compile_step(method, state, batch, key):
  """The method's train step compiled ahead of time with the trainer's own jit wiring
  (`trainer.compile_steps`: state donated, shardings and compiler options as in training)
  -> (compiled, compile seconds, XLA's planned scratch bytes or 0)."""
  import time
  from animgen import sharding, trainer
  t0 = time.perf_counter()
  train = trainer.compile_steps(method, sharding.make_mesh()).train
  compiled = train.lower(state, batch, key).compile()
  seconds = time.perf_counter() - t0
  try:
    temp = int(compiled.memory_analysis().temp_size_in_bytes)
  except Exception:  # pragma: no cover  (backends without memory analysis)
    temp = 0
  return compiled, seconds, temp


def add_torch_and_child_args(p) -> None:
  """The options the sequence-model benchmarks share: torch's allocator and threads, the JSON
  output, and the hidden --child that runs one variant in a fresh process."""
  p.add_argument('--torch-malloc', choices=['tuned', 'stock'], default='tuned',
                 help="torch's allocator: animgen's entry-point mallopt (tuned) or glibc's")
  p.add_argument('--torch-threads', type=int, default=1,
                 help="torch's intra-op threads (0: torch's default; bench/torch_sequence_models.py)")
  p.add_argument('--json', default=None)
  p.add_argument('--child', default=None, help=argparse.SUPPRESS)
