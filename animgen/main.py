"""Entry point: python -m animgen.main --config=configs/<method>.py[:variant] [--workdir=...]

--mode=train (default) trains and resumes from the latest checkpoint in --workdir;
--mode=eval evaluates the latest checkpoint on the test split;
--mode=finalize rebuilds the run's artefacts (e.g. the motion codebook).

Every --config.* field is checked before any work (animgen/validate.py). Exit codes: 0 done;
1 training diverged (NaN/Inf; the last good checkpoint is kept); 2 bad input (one line on
stderr, nothing written); 75 stopped by SIGTERM after saving a checkpoint (rerun the same
command to resume; 75 is sysexits' EX_TEMPFAIL, "try again later").
"""
import os

from absl import app, flags
from ml_collections import config_flags

from animgen import runtime

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file, e.g. configs/landscape.py',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run directory (default: runs/<config name>)')
_MODE = flags.DEFINE_enum('mode', 'train', ['train', 'eval', 'finalize'], 'What to do.')


def default_workdir(config_path: str) -> str:
  path, _, variant = config_path.partition(':')
  name = os.path.splitext(os.path.basename(path))[0]
  return os.path.join('runs', name + (f'_{variant}' if variant else ''))


def _default_config(config_path: str):
  """The config file's variant as it is before the user's --config.* overrides."""
  import importlib.util
  path, sep, arg = config_path.partition(':')
  spec = importlib.util.spec_from_file_location('_animgen_config_defaults', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg) if sep else module.get_config()


def main(argv):
  from absl import logging
  if not flags.FLAGS['verbosity'].present:  # keep library INFO chatter (orbax) out of the way
    logging.set_verbosity(logging.WARNING)
  from animgen import validate, trainer
  from animgen.errors import InputError
  with runtime.user_errors():
    if len(argv) > 1:
      raise InputError(f'unexpected argument {argv[1]!r}: every option is a --flag=value '
                       '(see --help)')
    try:
      config = _CONFIG.value
      config.method  # noqa: B018  (forces the lazy load)
    except Exception as e:  # config_flags loads the file lazily and reports it over lines
      lines = [l.strip() for l in str(e).splitlines() if l.strip()]
      raise InputError(f'cannot load --config={flags.FLAGS["config"].config_filename}: '
                       f'{lines[-1] if lines else type(e).__name__}') from None
    config_path = flags.FLAGS['config'].config_filename
    validate.check(config, _default_config(config_path))
    workdir = _WORKDIR.value or default_workdir(config_path)
    validate.check_workdir(workdir)
    if _MODE.value == 'train':
      trainer.train_and_evaluate(config, workdir)
    elif _MODE.value == 'eval':
      trainer.evaluate(config, workdir)
    else:
      trainer.finalize(config, workdir)


def _parse_flags(argv):
  """A bad flag, config file or config override: one line, exit 2."""
  from animgen.errors import InputError
  with runtime.user_errors():
    try:
      return flags.FLAGS(argv)
    except InputError:   # the config's own one-line error (e.g. an unknown variant)
      raise
    except flags.Error as e:
      if 'Error whilst parsing config file' in str(e):  # the config's own error is the last line
        lines = [l.strip() for l in str(e).splitlines() if l.strip()]
        given = next((a for a in argv if a.startswith('--config=')), '--config')
        raise InputError(f'cannot load {given}: {lines[-1]}') from None
      raise
    except Exception as e:  # config_flags raises AttributeError/KeyError/... for bad overrides
      msg = str(e).strip().strip('"').splitlines()[0] if str(e).strip() else type(e).__name__
      raise InputError(f'bad --config or override: {msg} (check the field names in the '
                       'config file)') from None


def run():
  runtime.tune_malloc()   # before JAX starts its threads
  runtime.quiet_tensorflow()
  runtime.compilation_cache()   # a resumed or repeated run skips most compilation
  app.run(main, flags_parser=_parse_flags)


if __name__ == '__main__':
  run()
