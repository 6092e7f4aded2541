"""clip_folders: a user's own clips for Animating Landscape (frame folders and/or videos), the
official pair rule, the seeded clip-level split, one-line layout errors, and training and
evaluating both landscape methods on such a folder through animgen.main.

The clips are cut from the shipped data/clips/tree.mp4 (swaying leaves, nearly still at 32 px:
its consecutive frames differ by < 0.01); windows panning across it give clips whose frames
differ by ~0.05.
"""
import json
import os
import shutil

import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

from animgen import input_pipeline, media
from animgen.datasets import clip_folders as cf
from animgen.datasets import common
from animgen.errors import InputError
from conftest import ROOT, run_cli, smoke_config

tfds.disable_progress_bar()
SIZE = 32


@pytest.fixture(scope='module')
def tree():
  frames, _ = media.read_video(os.path.join(ROOT, 'data', 'clips', 'tree.mp4'))
  return media.to_uint8(frames)                           # [52, 240, 320, 3]


def _pan(tree, start, n, shift=8):
  """n frames: 200x240 windows moving `shift` px right per frame (moving clouds stand-in)."""
  return [tree[start + t][:, shift * t:shift * t + 200] for t in range(n)]


def _still(tree, start, n):
  """n consecutive frames of the tree as they are (mean abs difference < 0.01 at 32 px)."""
  return [tree[start + t][:, :200] for t in range(n)]


def _folder(path, frames, names):
  os.makedirs(path, exist_ok=True)
  for f, n in zip(frames, names):
    Image.fromarray(f).save(os.path.join(path, n), quality=95)


def _resized(path):
  with Image.open(path) as im:
    return np.asarray(im.convert('RGB').resize((SIZE, SIZE), Image.Resampling.BILINEAR))


def _prepare(data_dir, manual_dir):
  return input_pipeline.prepare(f'clip_folders/s{SIZE}', str(data_dir), str(manual_dir))


def _records(builder, split):
  src = builder.as_data_source(split=split)
  return [src[i] for i in range(len(src))]


def _one_line(excinfo, *needles):
  msg = str(excinfo.value)
  assert msg and '\n' not in msg, msg
  for n in needles:
    assert n in msg, (n, msg)
  return msg


# ----------------------------------------------------------------------------- rules


def test_frame_numbers_and_step():
  assert cf.frame_numbers(['frames_00000001.jpg', 'frames_00000003.jpg']) == [1, 3]
  assert cf.frame_numbers(['vid_frames_00000009.jpg', 'vid_frames_00000011.JPG']) == [9, 11]
  assert cf.frame_numbers(['IMG_2023_0007 (edit).png', 'IMG_2023_0008 (edit).png']) == [7, 8]
  assert cf.frame_numbers(['sunset.png', 'dusk.png']) is None         # no numbers
  assert cf.frame_numbers(['a1.png', 'b.png']) is None                # not every frame
  assert cf.frame_numbers(['a2.png', 'b1.png']) is None               # not increasing
  assert cf.clip_step([1, 3, 5, 9, 11]) == 2
  assert cf.clip_step([1, 2, 3, 5, 7, 9]) == 2
  assert cf.clip_step([1, 2, 4, 6, 7]) == 1                            # a tie: the smaller
  assert cf.clip_step([10, 20]) == 10


def test_pair_filter_threshold_and_step():
  a = np.zeros((1, 10, 10, 3), np.uint8)
  # mean abs diffs 5/255 = 0.0196 (< 0.02), 6/255 = 0.0235, 6/255, 0
  frames = np.concatenate([a, a + 5, a + 11, a + 5, a + 5])
  assert common.MIN_MEAN_ABS_DIFF == 0.02
  assert common.pair_filter([0, 1, 2, 3, 4], frames, 1).tolist() == [False, True, True, False]
  assert common.pair_filter([1, 3, 5, 9, 11], frames, 2).tolist() == [False, True, False, False]
  assert common.pair_filter([1, 3, 5, 9, 11], frames, 1).tolist() == [False] * 4


def test_seeded_split_is_deterministic_and_by_clip():
  clips = [f'clip{i}' for i in range(20)]
  a, b = cf.seeded_split(clips, 0), cf.seeded_split(clips, 0)
  assert a == b and len(a['test']) == 2 and len(a['train']) == 18
  assert sorted(a['train'] + a['test']) == sorted(clips)               # each clip once
  assert a['train'] == [c for c in clips if c in a['train']]           # order kept
  assert cf.seeded_split(clips, 1)['test'] != a['test']                 # the seed decides
  for n, n_test in ((2, 1), (3, 1), (14, 1), (15, 2), (40, 4)):
    assert len(cf.seeded_split(list(range(n)), 0)['test']) == n_test, n


# ----------------------------------------------------------------------------- layouts


def test_official_names_step_two_and_the_filter(tree, tmp_path):
  """A folder of the official frames_XXXXXXXX.jpg every other frame: a numbering gap and a
  still pair are not valid; frames are the PIL bilinear 32x32 resize of the files."""
  frames = _pan(tree, 0, 7)
  frames[5] = frames[4]                                    # frames 11 -> 13: no motion
  numbers = [1, 3, 5, 9, 11, 13, 15]                       # 5 -> 9: a gap (step 2)
  names = [f'frames_{n:08d}.jpg' for n in numbers]
  _folder(tmp_path / 'in' / 'clouds', frames, names)
  _folder(tmp_path / 'in' / 'sea', _pan(tree, 20, 3), ['frames_00000002.jpg',
                                                        'frames_00000004.jpg',
                                                        'frames_00000006.jpg'])
  clip = cf.list_clips(str(tmp_path / 'in'))[0]
  assert clip.name == 'clouds' and clip.frames == tuple(names)
  got, ok = cf.read_clip(clip, SIZE)
  assert ok.tolist() == [True, True, False, True, False, True]
  assert got.shape == (7, SIZE, SIZE, 3) and got.dtype == np.uint8
  for t, n in enumerate(names):
    np.testing.assert_array_equal(got[t], _resized(tmp_path / 'in' / 'clouds' / n))
  b = _prepare(tmp_path / 'data', tmp_path / 'in')
  every = _records(b, 'train') + _records(b, 'test')
  assert sorted(len(r['frames']) for r in every) == [3, 7]              # whole clips
  assert [r['pair_ok'].tolist() for r in every if len(r['frames']) == 7] == [ok.tolist()]


def test_png_folders_with_any_names_and_natural_order(tree, tmp_path):
  frames = _pan(tree, 5, 4)
  _folder(tmp_path / 'dawn', frames, ['b.png', 'A.png', 'c.png', 'aa.png'])  # no numbers
  clip = cf.list_clips(str(tmp_path))[0]
  assert clip.frames == ('A.png', 'aa.png', 'b.png', 'c.png')
  got, ok = cf.read_clip(clip, SIZE)
  assert ok.tolist() == [True, True, True]                 # no numbers: only the 0.02 rule
  np.testing.assert_array_equal(got[0], _resized(tmp_path / 'dawn' / 'A.png'))
  _folder(tmp_path / 'n', frames[:3], ['shot2.png', 'shot10.png', 'shot3.png'])
  clip = [c for c in cf.list_clips(str(tmp_path)) if c.name == 'n'][0]
  assert clip.frames == ('shot2.png', 'shot3.png', 'shot10.png')       # natural, not text, order
  assert cf.read_clip(clip, SIZE)[1].tolist() == [True, False]         # step 1: 3 -> 10 a gap


def test_video_files(tree, tmp_path):
  media.write_video(tmp_path / 'pan.mp4', np.stack(_pan(tree, 0, 5)), fps=8)
  still = _still(tree, 0, 3)
  moving = _pan(tree, 10, 3)
  # a GIF that holds one frame twice (read back as a repeat): the pair between them is still
  media.write_video(tmp_path / 'hold.gif', np.stack([moving[0], moving[1], moving[1],
                                                     moving[2]]), fps=8)
  media.write_video(tmp_path / 'still.mov', np.stack(still), fps=8)
  clips = cf.list_clips(str(tmp_path))
  assert [c.name for c in clips] == ['hold.gif', 'pan.mp4', 'still.mov']
  assert all(c.frames == () for c in clips)
  hold = cf.read_clip(clips[0], SIZE)
  assert hold[0].shape == (4, SIZE, SIZE, 3) and hold[1].tolist() == [True, False, True]
  pan = cf.read_clip(clips[1], SIZE)
  assert pan[0].shape == (5, SIZE, SIZE, 3) and pan[1].all()
  assert cf.read_clip(clips[2], SIZE) is None              # every pair < 0.02: skipped
  want = common.resize_frames(media.to_uint8(media.read_video(tmp_path / 'pan.mp4')[0]), SIZE)
  np.testing.assert_array_equal(pan[0], want)


def test_train_and_test_folders_are_the_splits(tree, tmp_path):
  root = tmp_path / 'in'
  _folder(root / 'train' / 'b10', _pan(tree, 0, 3), ['1.jpg', '2.jpg', '3.jpg'])
  _folder(root / 'train' / 'b2', _pan(tree, 10, 4), ['1.jpg', '2.jpg', '3.jpg', '4.jpg'])
  media.write_video(root / 'train' / 'c.mp4', np.stack(_pan(tree, 20, 5)), fps=8)
  _folder(root / 'test' / 'only', _pan(tree, 30, 2), ['x.png', 'y.png'])
  _folder(root / 'ignored_clip', _pan(tree, 0, 3), ['1.jpg', '2.jpg', '3.jpg'])  # beside them
  b = _prepare(tmp_path / 'data', root)
  train, test = _records(b, 'train'), _records(b, 'test')
  assert [len(r['frames']) for r in train] == [4, 3, 5]                # b2, b10, c.mp4
  assert [int(r['clip_id']) for r in train] == [0, 1, 2]
  assert [len(r['frames']) for r in test] == [2] and int(test[0]['clip_id']) == 0
  np.testing.assert_array_equal(test[0]['frames'][1], _resized(root / 'test' / 'only' / 'y.png'))


def test_mixed_layout_and_seeded_split_of_whole_clips(tree, tmp_path):
  root = tmp_path / 'in'
  lengths = {}
  for i in range(5):
    _folder(root / f'clip{i}', _pan(tree, i, 3 + i), [f'f{k}.jpg' for k in range(3 + i)])
    lengths[f'clip{i}'] = 3 + i
  media.write_video(root / 'sea.mp4', np.stack(_pan(tree, 30, 9)), fps=8)
  lengths['sea.mp4'] = 9
  media.write_video(root / 'leaves.gif', np.stack(_still(tree, 0, 4)), fps=8)  # all still
  (root / 'notes').mkdir()
  (root / 'notes' / 'todo.txt').write_text('not a clip')
  (root / 'README.txt').write_text('not a clip')
  clips = cf.list_clips(str(root))
  assert [c.name for c in clips] == ['clip0', 'clip1', 'clip2', 'clip3', 'clip4', 'leaves.gif',
                                     'sea.mp4']
  split = cf.split_clips(str(root))
  assert split == cf.split_clips(str(root)) == cf.seeded_split(clips, 0)
  assert len(split['test']) == 1
  b = _prepare(tmp_path / 'data', root)
  names = lambda s: [c.name for c in split[s] if c.name != 'leaves.gif']   # the still one skipped
  for s in ('train', 'test'):
    assert [len(r['frames']) for r in _records(b, s)] == [lengths[n] for n in names(s)], s


def test_prepared_data_follows_the_folder(tree, tmp_path):
  root = tmp_path / 'in'
  for i in range(2):
    _folder(root / f'c{i}', _pan(tree, i, 3), ['1.jpg', '2.jpg', '3.jpg'])
  first = _prepare(tmp_path / 'data', root)
  assert len(_records(first, 'train')) == 1
  assert _prepare(tmp_path / 'data', root).data_dir == first.data_dir   # unchanged: reused
  _folder(root / 'c2', _pan(tree, 5, 3), ['1.jpg', '2.jpg', '3.jpg'])
  again = _prepare(tmp_path / 'data', root)
  assert again.data_dir != first.data_dir and len(_records(again, 'train')) == 2


# ----------------------------------------------------------------------------- errors


def _bad_layouts(tree, root):
  """(manual_dir, fragment of the message) for every kind of unusable folder."""
  (root / 'empty').mkdir(parents=True)
  (root / 'a_file').write_text('x')
  _folder(root / 'loose', _pan(tree, 0, 3), ['1.jpg', '2.jpg', '3.jpg'])
  _folder(root / 'one' / 'clip', _pan(tree, 0, 3), ['1.jpg', '2.jpg', '3.jpg'])
  _folder(root / 'half' / 'train' / 'clip', _pan(tree, 0, 3), ['1.jpg', '2.jpg', '3.jpg'])
  _folder(root / 'no_test' / 'train' / 'clip', _pan(tree, 0, 3), ['1.jpg', '2.jpg'])
  (root / 'no_test' / 'test' / 'notes').mkdir(parents=True)
  (root / 'nothing' / 'docs').mkdir(parents=True)
  (root / 'nothing' / 'docs' / 'a.txt').write_text('x')
  return [(root / 'missing', 'does not exist'), (root / 'empty', 'is empty'),
          (root / 'a_file', 'not a folder'), (root / 'loose', 'lie directly in'),
          (root / 'one', 'holds one clip (clip)'), (root / 'half', 'has train/ but no test/'),
          (root / 'no_test', 'no clip folders of frames or video files in'),
          (root / 'nothing', 'no clip folders of frames or video files in')]


def test_bad_layouts_are_one_line_errors_naming_the_layout(tree, tmp_path):
  for manual, fragment in _bad_layouts(tree, tmp_path / 'm'):
    with pytest.raises(InputError) as e:
      _prepare(tmp_path / 'data', manual)
    _one_line(e, 'clip_folders: ', fragment, '<manual_dir>/<clip>/*.jpg|png',
              '<manual_dir>/*.mp4|avi|mov|gif', 'train/')
  with pytest.raises(InputError) as e:                         # no manual_dir at all
    _prepare(tmp_path / 'data', '')
  _one_line(e, 'clip_folders: no manual_dir given')
  # every clip still: named, after the layout passed
  still = tmp_path / 'still'
  for i in range(2):
    _folder(still / f'c{i}', _still(tree, 3 * i, 3), ['1.png', '2.png', '3.png'])
  with pytest.raises(InputError) as e:
    _prepare(tmp_path / 'data', still)
  msg = _one_line(e, 'none of the 1 ', 'clip(s) (c', 'at least 0.02')
  assert msg.startswith('clip_folders: ')
  leftovers = [os.path.join(r, d) for r, ds, _ in os.walk(tmp_path / 'data') for d in ds
               if d.startswith(('1.0.0', 'incomplete'))]
  assert leftovers == []                                        # nothing half-prepared


def test_an_unreadable_frame_is_one_line_and_nothing_is_prepared(tree, tmp_path):
  for i in range(3):
    _folder(tmp_path / 'in' / f'c{i}', _pan(tree, i, 3), ['1.jpg', '2.jpg', '3.jpg'])
  (tmp_path / 'in' / 'c1' / '2.jpg').write_bytes(b'not a jpeg')
  with pytest.raises(InputError) as e:
    _prepare(tmp_path / 'data', tmp_path / 'in')
  _one_line(e, 'cannot read the frame', os.path.join('c1', '2.jpg'), 'replace or remove it')
  assert not [d for _, ds, _ in os.walk(tmp_path / 'data') for d in ds
              if d.startswith(('1.0.0', 'incomplete'))]


def test_main_reports_a_bad_folder_in_one_line(tmp_path):
  (tmp_path / 'empty').mkdir()
  r = run_cli(['-m', 'animgen.main', '--config=configs/landscape.py:folder,smoke=true',
               f'--config.manual_dir={tmp_path / "empty"}', f'--config.data_dir={tmp_path / "d"}',
               f'--workdir={tmp_path / "w"}'], timeout=300)
  lines = [l for l in r.stderr.splitlines() if l.strip() and 'InitializeLog' not in l
           and 'oneDNN' not in l]
  assert r.returncode == 2, r.stderr[-2000:]
  assert len(lines) == 1 and 'clip_folders:' in lines[0] and 'is empty' in lines[0], lines
  assert not os.path.exists(tmp_path / 'w' / 'checkpoints')


# ----------------------------------------------------------------------------- training


@pytest.fixture(scope='module')
def clips_dir(tree, tmp_path_factory):
  """Two clip folders (official names, step 2) and one video: a seeded split of 2 + 1."""
  root = tmp_path_factory.mktemp('clips')
  for i in range(2):
    _folder(root / f'clip{i}', _pan(tree, 10 * i, 6), [f'frames_{2 * k + 1:08d}.jpg'
                                                        for k in range(6)])
  media.write_video(root / 'pan.mp4', np.stack(_pan(tree, 25, 6)[::-1]), fps=8)   # panning left
  return str(root)


def test_motion_trains_and_evaluates_on_a_folder_without_flow(clips_dir, tmp_path, monkeypatch):
  """`python -m animgen.main --config=configs/landscape.py:folder` a few steps on the folder,
  then --mode=eval: the Sec. 6.2 curves next to the still frame and next-frame PSNR, no flow
  EPE; the sample GIF animates with stored codes."""
  work, data = tmp_path / 'w', tmp_path / 'd'
  args = ['-m', 'animgen.main', '--config=configs/landscape.py:folder,smoke=true',
          f'--config.manual_dir={clips_dir}', f'--config.data_dir={data}', f'--workdir={work}']
  r = run_cli(args, timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  assert os.path.isfile(work / 'samples' / 'motion_0000004.gif')
  assert os.path.isfile(work / 'codebook_motion.npz')
  r = run_cli(args + ['--mode=eval'], timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  with open(work / 'eval_4.json') as f:
    results = json.load(f)
  assert not any('epe' in k for k in results), results
  for k in ('seq_rmse', 'seq_rmse_still', 'seq_lpips', 'seq_lpips_still', 'psnr_zero',
            'psnr_codebook_mean'):
    assert np.isfinite(results[k]), (k, results)
  assert results['num_examples'] == 2                        # 1 test clip x pairs_per_clip 2
  with open(work / 'eval_sequences_4.json') as f:
    seq = json.load(f)
  assert seq['num_clips'] == 1 and seq['frames'] == [1, 2, 3]
  assert len(seq['rmse']['still']) == 3 and len(seq['lpips']['mean']) == 3
  _check_sample_codes(str(work), monkeypatch)


def _check_sample_codes(workdir, monkeypatch):
  """The sample GIFs (and rollouts of data without flow) animate with E^M of the stored common
  motion fields, not a zero code: with the motion loop replaced by one that paints sum(z), the
  frames show which code each example got."""
  import jax.numpy as jnp
  from animgen import runs
  from animgen.methods import landscape_motion
  run = runs.load(workdir)
  method, state = run.method, run.state
  assert state.motion_fields.shape[0] == 2 and float(jnp.abs(state.motion_fields).max()) > 0
  codes = np.asarray(method.encode(state.params, state.batch_stats, state.motion_fields,
                                   train=False)[0])           # [2 clips, Z]
  np.testing.assert_allclose(method.stored_codes(state, 4), codes[[0, 0, 1, 1]], rtol=1e-5,
                             atol=1e-6)
  monkeypatch.setattr(landscape_motion.generate, 'motion_frames',
                      lambda predict, image, z, n, **kw: jnp.zeros((n,) + image.shape) + z.sum())
  batch = {'frames': np.zeros((2, 2, SIZE, SIZE, 3), np.uint8)}
  painted = (codes.sum(-1) + 1) / 2                           # to_unit(sum(z)) per example
  for out in (method.sample(state, batch, None)['motion'], method.rollout(state, batch, 3)):
    np.testing.assert_allclose(np.asarray(out)[:, :, 0, 0, 0],
                               np.repeat(painted[:, None], out.shape[1], 1), rtol=1e-5)
  assert np.abs(painted - 0.5).max() > 1e-4                    # not what a zero code paints


def test_appearance_trains_on_a_folder(clips_dir, tmp_path):
  from animgen import runs, trainer
  c = smoke_config(str(tmp_path / 'd'), 'landscape_appearance', 'folder,smoke=true', **{
      'manual_dir': clips_dir, 'train.num_steps': 2, 'train.log_every': 1,
      'train.sample_every': 0, 'lstm.num_steps': 2})
  assert c.dataset == f'clip_folders/s{SIZE}'
  trainer.train_and_evaluate(c, str(tmp_path / 'w'))
  run = runs.load(str(tmp_path / 'w'))
  assert run.step == 2 and run.num_train == 2
  book = run.artefacts['codebook_appearance.npz']
  assert np.diff(book['offsets']).tolist() == [6, 6]           # every frame of both clips
