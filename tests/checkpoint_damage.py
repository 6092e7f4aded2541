"""The ways a checkpoint on disk gets damaged, applied to one step folder (tests/, bench/)."""
import glob
import os


def _data_file(step_dir):
  files = sorted(glob.glob(os.path.join(step_dir, 'state', 'd', '*')))
  return max(files, key=os.path.getsize)


def _halve(path):
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) // 2)


def _empty(path):
  open(path, 'wb').close()


def _flip(path):
  with open(path, 'r+b') as f:
    f.seek(os.path.getsize(path) // 2)
    b = f.read(1)
    f.seek(-1, 1)
    f.write(bytes([b[0] ^ 0xFF]))


def _garbage(path):
  with open(path, 'wb') as f:
    f.write(b'{"not": "orbax"')


def _delete(path):
  if os.path.isdir(path):
    import shutil
    shutil.rmtree(path)
  else:
    os.remove(path)


ACTIONS = {'halved': _halve, 'emptied': _empty, 'byte flipped': _flip, 'overwritten': _garbage,
           'deleted': _delete}
# (what, file inside the step folder or a function of it, actions)
TARGETS = [
    ('array data', _data_file, ('halved', 'emptied', 'byte flipped', 'deleted')),
    ('ocdbt manifest', 'state/manifest.ocdbt', ('halved', 'emptied', 'byte flipped', 'deleted')),
    ('per-process manifest', 'state/ocdbt.process_0/manifest.ocdbt', ('halved', 'deleted')),
    ('tree metadata', 'state/_METADATA', ('emptied', 'overwritten', 'deleted')),
    ('checkpoint metadata', '_CHECKPOINT_METADATA', ('emptied', 'overwritten')),
    ('iterator state', 'data/metadata', ('emptied', 'overwritten', 'deleted')),
    ('state folder', 'state', ('deleted',)),
    ('array folder', 'state/d', ('deleted',)),
]
CASES = [(f'{what} {action}', target, action) for what, target, actions in TARGETS
         for action in actions]


def damage(step_dir: str, target, action: str) -> None:
  path = target(step_dir) if callable(target) else os.path.join(step_dir, target)
  ACTIONS[action](path)
