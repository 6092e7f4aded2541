"""The command line: bad input is one line on stderr, exit code 2, no traceback, no output left
behind; progress goes to stderr, a few lines off a terminal, none with --quiet."""
import io
import os

import pytest

from conftest import run_cli


def _assert_one_line_error(r, *fragments):
  assert r.returncode == 2, (r.returncode, r.stderr[-1500:])
  assert 'Traceback' not in r.stderr
  lines = [l for l in r.stderr.strip().splitlines() if l.startswith('animgen: error')]
  assert len(lines) == 1, r.stderr[-1500:]
  for f in fragments:
    assert f in lines[0], lines[0]


def _animate(tmp_path, image, workdir, out='out.mp4'):
  return run_cli(['-m', 'animgen.cli', 'animate', str(image), '-o', str(tmp_path / out),
                  '--workdir', str(workdir), '-q'])


def test_missing_image(tmp_path, smoke_run):
  r = _animate(tmp_path, tmp_path / 'nope.jpg', smoke_run[1])
  _assert_one_line_error(r, 'nope.jpg')
  assert not os.listdir(tmp_path)


def test_zero_byte_and_truncated_images(tmp_path, smoke_run):
  empty = tmp_path / 'empty.jpg'
  empty.write_bytes(b'')
  r = _animate(tmp_path, empty, smoke_run[1], 'a.mp4')
  _assert_one_line_error(r, 'empty.jpg')
  photo = os.path.join(os.path.dirname(__file__), '..', 'data', 'photos', 'china.jpg')
  data = open(photo, 'rb').read()
  cut = tmp_path / 'cut.jpg'
  cut.write_bytes(data[:len(data) // 2])
  r = _animate(tmp_path, cut, smoke_run[1], 'b.mp4')
  _assert_one_line_error(r, 'cut.jpg')
  assert sorted(os.listdir(tmp_path)) == ['cut.jpg', 'empty.jpg']


def test_workdir_without_checkpoint(tmp_path):
  photo = os.path.join(os.path.dirname(__file__), '..', 'data', 'photos', 'china.jpg')
  (tmp_path / 'run').mkdir()
  r = _animate(tmp_path, photo, tmp_path / 'run')
  _assert_one_line_error(r, 'run')
  assert os.listdir(tmp_path) == ['run']


def test_unknown_output_extension(tmp_path, smoke_run):
  photo = os.path.join(os.path.dirname(__file__), '..', 'data', 'photos', 'china.jpg')
  r = _animate(tmp_path, photo, smoke_run[1], 'out.xyz')
  _assert_one_line_error(r, '.xyz')
  assert not os.listdir(tmp_path)


@pytest.mark.parametrize('override', ['--config.train.no_such_field=1',
                                      '--config.train.num_steps=abc'])
def test_bad_config_override(tmp_path, override):
  r = run_cli(['-m', 'animgen.main', '--config=configs/landscape.py:smoke',
               f'--workdir={tmp_path / "w"}', override])
  _assert_one_line_error(r)
  assert not os.path.exists(tmp_path / 'w')


def test_missing_config_file(tmp_path):
  r = run_cli(['-m', 'animgen.main', '--config=configs/nope.py', f'--workdir={tmp_path / "w"}'])
  _assert_one_line_error(r, 'nope.py')


def test_unknown_config_variant_names_the_variants(tmp_path):
  r = run_cli(['-m', 'animgen.main', '--config=configs/landscape.py:nope',
               f'--workdir={tmp_path / "w"}'])
  _assert_one_line_error(r, "unknown variant 'nope'")
  assert 'smoke' in r.stderr and not os.path.exists(tmp_path / 'w')


def test_init_from_without_a_run_leaves_no_workdir(tmp_path, data_dir):
  r = run_cli(['-m', 'animgen.main', '--config=configs/landscape.py:smoke',
               f'--config.data_dir={data_dir}', f'--workdir={tmp_path / "w"}',
               f'--config.train.init_from={tmp_path / "nope"}'])
  _assert_one_line_error(r, 'train.init_from=', 'nope')
  assert not os.path.exists(tmp_path / 'w')


class _Terminal(io.StringIO):
  def isatty(self):
    return True


def _two_stages(progress):
  with progress.stage('stage 1 (3 periods)', 3, 'periods', 'p = 16') as st:
    for item in ('p = 20', 'p = 24', None):
      st.advance(item=item)
  progress.say('solved')
  with pytest.raises(RuntimeError):
    with progress.stage('stage 2'):
      raise RuntimeError('boom')


def test_progress_off_a_terminal_is_one_line_per_stage():
  from animgen.progress import Progress
  out = io.StringIO()
  _two_stages(Progress('animgen loop', stream=out))
  lines = out.getvalue().splitlines()
  assert '\r' not in out.getvalue() and len(lines) == 2, lines  # no bar; the failed stage: none
  assert lines[0].startswith('animgen loop: stage 1 (3 periods): ') and lines[0].endswith(' s')
  assert lines[1] == 'animgen loop: solved'


def test_progress_on_a_terminal_draws_a_bar():
  from animgen.progress import Progress
  out = _Terminal()
  _two_stages(Progress('animgen loop', stream=out))
  text = out.getvalue()
  assert 'stage 1 (3 periods): 0/3 periods' in text and 'p = 16' in text  # the live bar
  assert 'animgen loop: stage 1 (3 periods): ' in text and 'animgen loop: solved' in text


def test_quiet_progress_writes_nothing():
  from animgen.progress import Progress
  for stream in (io.StringIO(), _Terminal()):
    _two_stages(Progress('animgen loop', quiet=True, stream=stream))
    assert stream.getvalue() == ''
  got = []  # a callable receives the summary lines without the prefix
  _two_stages(Progress.wrap(got.append))
  assert got[0].startswith('stage 1 (3 periods): ') and got[1] == 'solved' and len(got) == 2


def test_quiet_flags_parse():
  from animgen import cli
  p = cli.build_parser()
  for argv in (['loop', 'v.mp4', '-o', 'o.gif'], ['sample', '--workdir', 'w', '-o', 'o.gif'],
               ['convert', 'models'], ['animate', 'x.jpg', '-o', 'o.mp4']):
    assert not p.parse_args(argv).quiet and p.parse_args(argv + ['-q']).quiet
