"""grain pipeline over the tfds source: seeded shuffling, per-epoch reshuffle, augmentation."""
import numpy as np

from animgen import input_pipeline
from conftest import smoke_config


def test_crop_and_flip_are_the_same_for_every_frame():
  rng = np.random.default_rng(0)
  frame = rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)
  clip = np.stack([frame, frame])
  seen_flip = seen_plain = False
  for seed in range(20):
    out = input_pipeline.random_crop_flip({'frames': clip, 'id': 7}, np.random.default_rng(seed),
                                          crop=6, flip=True)
    f = out['frames']
    assert f.shape == (2, 6, 6, 3) and out['id'] == 7
    np.testing.assert_array_equal(f[0], f[1])  # one crop and one flip for the whole clip
    # the crop is a window of the original, possibly mirrored
    windows = [frame[y:y + 6, x:x + 6] for y in range(5) for x in range(7)]
    plain = any(np.array_equal(f[0], w) for w in windows)
    flipped = any(np.array_equal(f[0][:, ::-1], w) for w in windows)
    assert plain or flipped
    seen_plain |= plain
    seen_flip |= flipped and not plain
  assert seen_plain and seen_flip


def test_training_stream_is_seeded_and_reshuffled_every_epoch(data_dir):
  from animgen.methods import get_method
  c = smoke_config(data_dir)
  m = get_method(c.method)(c, num_train=4)
  make = lambda seed: input_pipeline.make_dataset(c, 'train', m.make_example, train=True,
                                                  batch_size=2, seed=seed)
  a, b, other = make(0), make(0), make(1)
  ids = lambda ds, n: [tuple(ds[i]['clip_id']) for i in range(n)]
  assert ids(a, 6) == ids(b, 6)                        # same seed, same stream
  np.testing.assert_array_equal(a[3]['frames'], b[3]['frames'])
  epochs = [sorted(sum(ids(a, 6)[2 * e:2 * e + 2], ())) for e in range(3)]
  assert all(e == [0, 1, 2, 3] for e in epochs)        # every clip once per epoch
  orders = [sum(ids(a, 6)[2 * e:2 * e + 2], ()) for e in range(3)]
  assert len(set(orders)) > 1                          # reshuffled every epoch
  assert ids(a, 6) != ids(other, 6)                    # another seed, another order
  # the iterator state resumes the stream exactly
  it = input_pipeline.to_iter(a, threads=0)
  next(it), next(it)
  state = it.get_state()
  expected = next(it)['clip_id']
  it2 = input_pipeline.to_iter(a, threads=0)
  it2.set_state(state)
  np.testing.assert_array_equal(next(it2)['clip_id'], expected)
