"""Every colab/*.ipynb runs top to bottom on CPU (its smoke configuration), so none can rot."""
import glob
import os

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT

# notebook -> (what its outputs must show inline, files its run must leave in the workdir)
NOTEBOOKS = {
    'landscape': ('image/gif', ['checkpoints', 'animated.gif', 'steered.gif']),
    'syncdraw': ('image/png', ['checkpoints', 'caption.gif', 'attention.png']),
    'deepgifs': ('image/gif', ['checkpoints', 'samples']),
    'image2gif': ('image/gif', ['checkpoints', 'photo.gif']),
    'cinemagraphs': ('image/gif', ['tree.gif', 'tree_labels.png', 'tree_candidates.json',
                                   'prefs.npz']),
}


def test_every_notebook_is_tested():
  assert sorted(os.path.basename(p)[:-6] for p in glob.glob(os.path.join(ROOT, 'colab', '*.ipynb'))) \
      == sorted(NOTEBOOKS)


@pytest.mark.parametrize('name', sorted(NOTEBOOKS))
def test_notebook_executes_and_shows_its_results(name, tmp_path, data_dir):
  nb = nbformat.read(os.path.join(ROOT, 'colab', f'{name}.ipynb'), as_version=4)
  workdir = tmp_path / 'run'
  env = {'ANIMGEN_REPO': ROOT, 'ANIMGEN_COLAB_SMOKE': '1', 'ANIMGEN_DATA_DIR': data_dir,
         'ANIMGEN_WORKDIR': str(workdir), 'ANIMGEN_COLAB_FRAMES': '5',
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
  shown, files = NOTEBOOKS[name]
  assert any(shown in o.get('data', {}) for o in outputs)   # the result is shown inline
  for f in files:
    assert os.path.exists(workdir / f), f
  if 'checkpoints' in files:
    assert os.listdir(workdir / 'checkpoints')
