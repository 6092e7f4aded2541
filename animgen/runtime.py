"""Process set-up shared by the entry points, and the one place user errors become exit codes.

Environment switch (the only one animgen reads; documented in docs/design.md):
  ANIMGEN_NO_TUNING=1  keep glibc malloc and XLA:CPU exactly as they are by default (no mallopt,
                       no malloc_trim, no per-program XLA options).
Transparent huge pages for malloc's maps cannot be set from inside a process: glibc reads them
only from GLIBC_TUNABLES=glibc.malloc.hugetlb=1 at start-up, an explicit switch for the user
(bench/README.md, "mallopt in the process against the environment": 108 k -> 0.7 k page faults
per batch-1 paper-size step).
"""
import contextlib
import ctypes
import ctypes.util
import functools
import os
import sys

# glibc mallopt parameters (malloc.h) and the values bench/landscape.py measured best
# (bench/README.md, allocator table). Stock malloc maps and unmaps XLA:CPU's scratch buffers on
# every call (~150 k page faults per step at batch 1); here only blocks of 256 MiB and more are
# mapped, the rest stays on one heap that is trimmed only by release_memory.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -2, -3, -8
MALLOPT = {_M_ARENA_MAX: 1, _M_MMAP_THRESHOLD: 256 << 20, _M_TRIM_THRESHOLD: 2**31 - 1,
           _M_TOP_PAD: 256 << 20}   # mallopt takes an int: the trim threshold is at most 2 GiB


def tuning_enabled() -> bool:
  return sys.platform.startswith('linux') and not os.environ.get('ANIMGEN_NO_TUNING')


@functools.lru_cache(maxsize=None)
def _libc():
  try:
    libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
    libc.mallopt  # noqa: B018  (AttributeError on a libc without it, e.g. musl)
    return libc
  except (OSError, AttributeError):
    return None


def tune_malloc() -> bool:
  """Sets MALLOPT in this process (call it before JAX starts its threads); True if glibc took
  every value. Values the user gave through MALLOC_*_ environment variables win."""
  libc = _libc()
  if not tuning_enabled() or libc is None or any(k.startswith('MALLOC_') for k in os.environ):
    return False
  return all(libc.mallopt(ctypes.c_int(k), ctypes.c_int(v)) == 1
             for k, v in MALLOPT.items())


def release_memory() -> bool:
  """Gives the heap's free pages back to the OS (glibc malloc_trim(0)); True if any were.

  With MALLOPT the heap is never trimmed by itself, so the memory XLA freed after compiling a
  program would stay in the process; the trainer calls this after init and the first step."""
  libc = _libc()
  if not tuning_enabled() or libc is None:
    return False
  return bool(libc.malloc_trim(0))


# XLA:CPU options for the programs of the landscape networks (bench/README.md, XLA options
# table): with the legacy LLVM IR fusion emitters instead of the MLIR ones, compiling the
# paper-size motion step peaks ~0.9 GiB lower and steps run as fast. The looper's loops of small
# ops run ~1.7x slower with them, so they are passed per program (jax.jit(compiler_options=)).
CNN_CPU_OPTIONS = {'xla_cpu_use_fusion_emitters': False}
# XLA:CPU options for the DeepGIFs and Image2GIF programs (bench/README.md): YNNPACK for dots
# only, so that the convolutions' weight gradients run on XLA's own kernels (faster here).
DOT_ONLY_YNN_OPTIONS = {'xla_cpu_experimental_ynn_fusion_type': 'LIBRARY_FUSION_TYPE_DOT'}


def cnn_compiler_options(options: dict = CNN_CPU_OPTIONS) -> dict | None:
  """`options` when the backend is a CPU whose XLA accepts them, else None."""
  if os.environ.get('ANIMGEN_NO_TUNING'):
    return None
  return supported_options(tuple(sorted(options.items())))


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


def quiet_tensorflow() -> None:
  """Imports TensorFlow (tfds and clu's summary writers use it) with its C++ start-up lines
  ('oneDNN custom operations are on', 'All log messages before absl::InitializeLog()') kept off
  the user's terminal: file descriptor 2 points at a temporary file during the import, whose
  text is replayed only if the import fails."""
  import importlib
  import tempfile
  if 'tensorflow' in sys.modules:
    return
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile(mode='w+b') as log:
    os.dup2(log.fileno(), 2)
    try:
      importlib.import_module('tensorflow')
    except BaseException:
      os.dup2(saved, 2)
      log.seek(0)
      sys.stderr.write(log.read().decode(errors='replace'))
      raise
    finally:
      os.dup2(saved, 2)
      os.close(saved)


def _clip(text: str, limit: int = 1000) -> str:
  """A message of at most `limit` characters: its head and tail around ' ... '."""
  return text if len(text) <= limit else text[:limit * 2 // 3] + ' ... ' + text[-limit // 3:]


def _one_line(e: Exception) -> str:
  lines = [l.strip() for l in str(e).splitlines() if l.strip()]
  return lines[0] if lines else type(e).__name__


@contextlib.contextmanager
def user_errors(hold_warnings: bool = False):
  """InputError and bad flags -> one line on stderr, exit 2; TrainingDiverged -> exit 1;
  Interrupted (SIGTERM, checkpoint saved) -> exit 75. hold_warnings: Python warnings raised
  inside (e.g. torch's while reading a user's file) are shown when the block ends, and not at
  all when it ends in an InputError, whose line is then the only one."""
  import warnings
  from absl import flags
  from animgen.errors import EXIT_INTERRUPTED, InputError, Interrupted, TrainingDiverged
  try:
    with warnings.catch_warnings(record=hold_warnings) as caught:
      held = caught or []
      yield
  except InputError as e:
    print(f'animgen: error: {_clip(_one_line(e))}', file=sys.stderr, flush=True)
    sys.exit(2)
  except flags.Error as e:
    print(f'animgen: error: {_one_line(e)} (see --help)', file=sys.stderr, flush=True)
    sys.exit(2)
  except TrainingDiverged as e:
    print(f'animgen: error: {e}', file=sys.stderr, flush=True)
    sys.exit(1)
  except Interrupted as e:
    print(f'animgen: {e}', file=sys.stderr, flush=True)
    sys.exit(EXIT_INTERRUPTED)
  else:
    for w in held:
      warnings.showwarning(w.message, w.category, w.filename, w.lineno)
