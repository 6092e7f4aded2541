"""What the Colab notebooks (colab/*.ipynb) share: the runtime, the batch, TensorBoard and inline
animations. The notebooks install animgen first (their first cell), then import this.

  from animgen import colab
  SMOKE = colab.runtime()                  # prints the backend and devices; True on a CPU
  colab.fit_batch(config)                  # the batch divisible by the devices
  colab.tensorboard(WORKDIR)               # inline TensorBoard (Colab / Jupyter only)
  colab.show('out.gif')                    # an animation or image inline
  colab.latest_sample(WORKDIR)             # the newest sample GIF the trainer wrote

ANIMGEN_COLAB_SMOKE=1 makes `runtime` pick the smoke configs on any backend (CI executes every
notebook that way on CPU).
"""
import os
import sys


def in_colab() -> bool:
  return 'google.colab' in sys.modules


def runtime() -> bool:
  """Prints the JAX backend and its devices; True when the notebook should run its smoke
  configuration: on a CPU, or when ANIMGEN_COLAB_SMOKE is set."""
  import jax
  backend = jax.default_backend()      # 'tpu', 'gpu' or 'cpu'
  print(f'{backend}: {jax.device_count()} device(s), {jax.process_count()} process(es):',
        ', '.join(d.device_kind for d in jax.devices()[:8]))
  return backend == 'cpu' or bool(os.environ.get('ANIMGEN_COLAB_SMOKE'))


def fit_batch(config) -> int:
  """Rounds config.batch_size down to a multiple of the device count (the trainer shards every
  batch over all devices and refuses another size), at least one per device; prints the change.
  E.g. Sync-DRAW's paper batch of 100 on a TPU v2-8 (8 cores) becomes 96."""
  import jax
  n = jax.device_count()
  b = max(n, config.batch_size // n * n)
  if b != config.batch_size:
    print(f'batch_size {config.batch_size} -> {b}: a multiple of the {n} devices')
    config.batch_size = b
  return b


def tensorboard(logdir: str):
  """TensorBoard inline in Colab or Jupyter (the trainer's metrics and sample GIFs); elsewhere
  (a script, CI) it prints the command instead of starting a server."""
  if not (in_colab() or os.environ.get('JPY_PARENT_PID')) or os.environ.get('ANIMGEN_COLAB_SMOKE'):
    print(f'tensorboard --logdir {logdir}')
    return
  from tensorboard import notebook
  notebook.start(f'--logdir {logdir}')


def show(path: str, width: int = 320) -> None:
  """Displays an image or animation file (GIF, PNG) inline."""
  from IPython.display import Image, display
  display(Image(filename=path, width=width))


def latest_sample(workdir: str, name: str = '') -> str:
  """The newest sample GIF the trainer wrote to workdir/samples (`<name>_<step>.gif`; any name
  when name is '')."""
  folder = os.path.join(workdir, 'samples')
  gifs = sorted(f for f in os.listdir(folder) if f.endswith('.gif') and f.startswith(name))
  if not gifs:
    raise FileNotFoundError(f'no {name or "sample"} GIFs in {folder} yet: train first')
  by_step = sorted(gifs, key=lambda f: f.rsplit('_', 1)[-1])
  return os.path.join(folder, by_step[-1])
