"""Entry point: python -m animgen.main --config=configs/<method>.py[:variant] [--workdir=...]

--mode=train (default) trains and resumes from the latest checkpoint in --workdir;
--mode=eval evaluates the latest checkpoint on the test split;
--mode=finalize rebuilds the run's artefacts (e.g. the motion codebook).
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


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  from absl import logging
  if not flags.FLAGS['verbosity'].present:  # keep library INFO chatter (orbax) out of the way
    logging.set_verbosity(logging.WARNING)
  from animgen import trainer
  config = _CONFIG.value
  workdir = _WORKDIR.value or default_workdir(flags.FLAGS['config'].config_filename)
  with runtime.user_errors():
    if _MODE.value == 'train':
      trainer.train_and_evaluate(config, workdir)
    elif _MODE.value == 'eval':
      trainer.evaluate(config, workdir)
    else:
      trainer.finalize(config, workdir)


def _parse_flags(argv):
  with runtime.user_errors():  # a bad flag or config override: one line, exit 2
    return flags.FLAGS(argv)


def run():
  runtime.configure()
  app.run(main, flags_parser=_parse_flags)


if __name__ == '__main__':
  run()
