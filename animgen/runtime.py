"""Process set-up shared by the entry points, and the one place user errors become exit 2."""
import contextlib
import functools
import os
import sys

# glibc malloc settings measured by bench/landscape.py (bench/README.md, session 13). Stock
# malloc maps and unmaps XLA:CPU's scratch buffers in 4 KiB pages on every call (~150 k page
# faults per step at batch 1); with no mmap at all the heap fragments instead and grows to
# 2-3x XLA's scratch at batch 8. Here only blocks of 256 MiB and more (XLA's largest scratch)
# are mapped, in transparent huge pages (a few hundred faults per step), and the rest stays on
# one heap that is never trimmed by itself (release_memory trims it after compiling).
MALLOC_ENV = {
    'MALLOC_ARENA_MAX': '1',
    'MALLOC_MMAP_THRESHOLD_': str(256 << 20),
    'MALLOC_TRIM_THRESHOLD_': str(8 << 30),
    'MALLOC_TOP_PAD_': str(256 << 20),
}
HUGE_PAGES = 'glibc.malloc.hugetlb=1'   # glibc >= 2.35: madvise(MADV_HUGEPAGE) on malloc's maps


def tuned_env(environ) -> dict:
  """environ plus MALLOC_ENV and huge pages; settings the user has made are kept."""
  env = dict(environ, ANIMGEN_TUNED='1')
  for k, v in MALLOC_ENV.items():
    env.setdefault(k, v)
  tunables = env.get('GLIBC_TUNABLES', '')
  if 'glibc.malloc.hugetlb' not in tunables:
    env['GLIBC_TUNABLES'] = ':'.join(t for t in (tunables, HUGE_PAGES) if t)
  return env


def configure():
  """Re-executes the process once with the tuned allocator (it must be set before start-up).

  ANIMGEN_NO_TUNING=1 keeps the environment as it is."""
  if os.environ.get('ANIMGEN_NO_TUNING') or os.environ.get('ANIMGEN_TUNED'):
    return
  if 'ipykernel' in sys.modules or 'IPython' in sys.modules:
    return  # inside a notebook kernel: never replace the kernel process
  if not sys.platform.startswith('linux'):
    return
  env = tuned_env(os.environ)
  argv = list(getattr(sys, 'orig_argv', []))
  if not argv:
    return
  sys.stdout.flush(); sys.stderr.flush()
  os.execve(sys.executable, [sys.executable] + argv[1:], env)


def release_memory() -> bool:
  """Gives the heap's free pages back to the OS (glibc malloc_trim(0)); True if any were.

  The tuned allocator above never trims by itself, so without this the memory that XLA freed
  after compiling a program (LLVM's working set) would stay in the process for good. Called
  once after initialisation and once after the first (compiling) training step.
  ANIMGEN_NO_TUNING=1 or ANIMGEN_NO_TRIM=1 turn it off."""
  if os.environ.get('ANIMGEN_NO_TUNING') or os.environ.get('ANIMGEN_NO_TRIM'):
    return False
  if not sys.platform.startswith('linux'):
    return False
  import ctypes
  import ctypes.util
  try:
    libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
    return bool(libc.malloc_trim(0))
  except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to trim
    return False


# XLA:CPU options for the programs of the landscape networks (bench/README.md, session 14). With
# the legacy LLVM IR fusion emitters instead of the MLIR ones, compiling the paper-size motion
# step peaks ~0.9 GiB lower, its executable keeps ~0.2 GiB less, and steps run as fast
# (generation ~20 % faster). The looper's loops of small ops run ~1.7x slower with them, so the
# options go to those programs only (jax.jit(..., compiler_options=...)), not to XLA_FLAGS.
CNN_CPU_OPTIONS = {'xla_cpu_use_fusion_emitters': False}


def cnn_compiler_options() -> dict | None:
  """CNN_CPU_OPTIONS when the backend is a CPU whose XLA accepts them, else None (also with
  ANIMGEN_NO_TUNING=1 or ANIMGEN_NO_XLA_OPTIONS=1)."""
  if os.environ.get('ANIMGEN_NO_TUNING') or os.environ.get('ANIMGEN_NO_XLA_OPTIONS'):
    return None
  return supported_options(tuple(sorted(CNN_CPU_OPTIONS.items())))


@functools.lru_cache(maxsize=None)
def supported_options(items: tuple) -> dict | None:
  """dict(items) if the default backend is a CPU that compiles a program with these options."""
  import jax
  import numpy as np
  if jax.default_backend() != 'cpu':
    return None
  options = dict(items)
  try:
    jax.jit(lambda x: x + 1, compiler_options=options).lower(np.float32(0)).compile()
  except Exception:  # an XLA that no longer has an option: compile as it would by default
    return None
  return options


def compilation_cache():
  """Keeps compiled XLA programs on disk (JAX_COMPILATION_CACHE_DIR, default
  ~/.cache/animgen/jax), so repeated `animgen` commands skip most compilation."""
  import jax
  path = os.environ.get('JAX_COMPILATION_CACHE_DIR') or os.path.join(
      os.path.expanduser('~'), '.cache', 'animgen', 'jax')
  try:
    os.makedirs(path, exist_ok=True)
  except OSError:
    return  # an unwritable home: compile every time
  jax.config.update('jax_compilation_cache_dir', path)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 1.0)


@contextlib.contextmanager
def user_errors():
  """InputError (and bad flags) -> one line on stderr, exit code 2, no traceback."""
  from absl import flags
  from animgen.errors import InputError
  try:
    yield
  except InputError as e:
    print(f'animgen: error: {e}', file=sys.stderr, flush=True)
    sys.exit(2)
  except flags.Error as e:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    print(f'animgen: error: {msg} (see --help)', file=sys.stderr, flush=True)
    sys.exit(2)
  except Exception as e:  # the trainer's divergence stop is a user-facing message too
    from animgen.trainer import TrainingDiverged
    if isinstance(e, TrainingDiverged):
      print(f'animgen: error: {e}', file=sys.stderr, flush=True)
      sys.exit(1)
    raise
