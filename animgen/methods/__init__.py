"""One file per paper method; the contract they implement is animgen/methods/base.py."""
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
