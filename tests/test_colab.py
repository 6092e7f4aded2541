"""colab/landscape.ipynb runs top to bottom on CPU (smoke config), so it cannot rot."""
import os

import nbformat
from nbclient import NotebookClient

from conftest import ROOT


def test_notebook_executes_and_shows_the_animation(tmp_path, data_dir):
  nb = nbformat.read(os.path.join(ROOT, 'colab', 'landscape.ipynb'), as_version=4)
  env = {'ANIMGEN_REPO': ROOT, 'ANIMGEN_COLAB_SMOKE': '1', 'ANIMGEN_DATA_DIR': data_dir,
         'ANIMGEN_WORKDIR': str(tmp_path / 'run'), 'ANIMGEN_COLAB_FRAMES': '5',
         'ANIMGEN_NO_TUNING': '1'}
  old = {k: os.environ.get(k) for k in env}
  os.environ.update(env)
  cwd = os.getcwd()
  try:
    NotebookClient(nb, timeout=900, kernel_name='python3',
                   resources={'metadata': {'path': str(tmp_path)}}).execute()
  finally:
    os.chdir(cwd)
    for k, v in old.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v
  outputs = [o for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', [])]
  assert not [o for o in outputs if o.get('output_type') == 'error']
  assert any('image/gif' in o.get('data', {}) for o in outputs)   # the animation is shown inline
  assert os.listdir(tmp_path / 'run' / 'checkpoints')
