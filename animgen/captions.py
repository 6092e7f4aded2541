"""The caption language of Bouncing MNIST (Mittal et al. 2017, Sec. 4.2-4.5): vocabulary,
tokens, caption text, and the disjoint (digit, motion) rule of the train/test split. Shared by
the dataset builder, the Sync-DRAW caption model and the `animgen sample --caption` command."""
import re

import numpy as np

from animgen.errors import InputError

MOTIONS = ('left and right', 'up and down')
VOCAB = ('<pad>', 'the', 'digit', 'is', 'moving', 'and', 'left', 'right', 'up', 'down',
         '0', '1', '2', '3', '4', '5', '6', '7', '8', '9')
_IDS = {w: i for i, w in enumerate(VOCAB)}


def caption_length(digits: int) -> int:
  return 8 * digits


def caption_text(digits, motions) -> str:
  """'the digit 3 is moving left and right[ and digit 1 is moving up and down]'."""
  parts = [f'digit {d} is moving {MOTIONS[m]}' for d, m in zip(digits, motions)]
  return 'the ' + ' and '.join(parts)


def tokenize(text: str, length: int | None = None) -> np.ndarray:
  """Caption text -> int32 token ids (0-padded to `length`). Case and punctuation are ignored.

  Raises InputError naming the unknown words and the vocabulary."""
  words = re.findall(r"[\w<>]+", text.lower())   # any letters: 'é' or '数字' is a word, unknown
  unknown = [w for w in words if w not in _IDS or w == '<pad>']
  if unknown:
    raise InputError(f'caption {text!r}: unknown word(s) {unknown}; the vocabulary is: '
                     f'{" ".join(VOCAB[1:])}')
  if not words:
    raise InputError(f'caption {text!r} is empty: write e.g. "the digit 3 is moving up and down"')
  ids = np.array([_IDS[w] for w in words], np.int32)
  if length is not None:
    if len(ids) > length:
      raise InputError(f'caption {text!r} has {len(ids)} words; this model reads at most '
                       f'{length}')
    ids = np.pad(ids, (0, length - len(ids)))
  return ids


def detokenize(ids) -> str:
  return ' '.join(VOCAB[i] for i in np.asarray(ids) if i > 0)


def split_motion(digit: int, split: str) -> int:
  """The motion that `digit` has in `split` (Sec. 4.5: disjoint (digit, motion) pairs)."""
  return digit % 2 if split == 'train' else 1 - digit % 2
