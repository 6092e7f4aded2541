"""One file per paper method. A method is a class built from (config, dataset info) with:

  make_example(record, rng, train) -> dict of numpy arrays   (one example from a stored record)
  eval_index(num_records) -> (index_map, length) | None        (items to visit in evaluation)
  init(rng, batch) -> state                                  (a flax struct pytree)
  train_step(state, batch, rng) -> (state, metrics)           (pure; jitted by the trainer)
  eval_step(state, batch) -> metrics                         (pure; summed as metric * count)
  sample(state, batch, rng) -> {name: video [B, T, H, W, 3] in [0, 1]}
  finalize(state, workdir) -> None                            (artefacts after training)
"""
import importlib

METHODS = {
    'landscape_motion': 'animgen.methods.landscape_motion:LandscapeMotion',
    'landscape_appearance': 'animgen.methods.landscape_appearance:LandscapeAppearance',
    'image2gif': 'animgen.methods.image2gif:Image2GIF',
    'deepgifs': 'animgen.methods.deepgifs:DeepGIFs',
    'syncdraw': 'animgen.methods.syncdraw:SyncDRAW',
}


def get_method(name: str):
  from animgen.errors import InputError
  if name not in METHODS:
    raise InputError(f'unknown method {name!r}: choose one of {sorted(METHODS)}')
  module, cls = METHODS[name].split(':')
  return getattr(importlib.import_module(module), cls)
