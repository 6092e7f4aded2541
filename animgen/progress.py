"""Stage-by-stage progress of the command-line tools, on stderr, drawn with tqdm.

A command reports its work as stages (`Progress.stage`), each of a known number of items. On a
terminal every stage shows a live tqdm bar while it runs (the item being worked on after the
counts) and leaves one summary line when it ends. When stderr is not a terminal (a log file, a
pipe, a test capturing output) no bar is drawn and each stage writes only its summary line, so a
log gets a few lines per command, never a stream of carriage returns. `quiet` writes nothing.
Results go to stdout; everything here goes to stderr.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Callable, Iterator

from tqdm import tqdm


def _is_terminal(stream) -> bool:
  try:
    return bool(stream.isatty())
  except (AttributeError, ValueError):  # no isatty, or a closed stream
    return False


class Stage:
  """The handle of one running stage: `advance` counts finished items."""

  def __init__(self, bar: tqdm, total: int):
    self._bar = bar
    self.total = total
    self.done = 0

  def advance(self, n: int = 1, item: str | None = None) -> None:
    """Counts n more items as finished; `item` names the one that comes next (bar only)."""
    self.done += n
    if item is not None:
      self._bar.set_postfix_str(item, refresh=False)
    self._bar.update(n)


class Progress:
  """Progress of one command, every line prefixed with `prefix` (e.g. 'animgen loop').

  `write` replaces the output: it receives each summary line without the prefix and no bar is
  drawn (for callers that time or log the stages themselves).
  """

  def __init__(self, prefix: str, quiet: bool = False, stream=None,
               write: Callable[[str], None] | None = None):
    self.prefix = prefix
    self.quiet = quiet
    self.stream = sys.stderr if stream is None else stream
    self._write = write
    self.live = not quiet and write is None and _is_terminal(self.stream)

  @classmethod
  def wrap(cls, progress) -> 'Progress':
    """A Progress from what library functions accept: a Progress, a callable that takes each
    summary line, or None (silent)."""
    if isinstance(progress, Progress):
      return progress
    if progress is None:
      return cls('', quiet=True)
    return cls('', write=progress)

  def say(self, message: str) -> None:
    """One line (above a live bar, if one is drawn)."""
    if self.quiet:
      return
    if self._write is not None:
      self._write(message)
    else:
      tqdm.write(f'{self.prefix}: {message}', file=self.stream)
      self.stream.flush()

  @contextlib.contextmanager
  def stage(self, name: str, total: int = 1, unit: str = 'step',
            first: str | None = None) -> Iterator[Stage]:
    """Runs one stage of `total` items: yields a `Stage`; on success writes
    '<name>: <seconds> s'. `first` names the first item on the bar. A failing stage writes no
    summary (its error says what happened) and clears its bar."""
    bar = tqdm(total=total, desc=f'{self.prefix}: {name}', unit=unit, file=self.stream,
               leave=False, disable=not self.live, dynamic_ncols=True,
               postfix=first, bar_format='{desc}: {n_fmt}/{total_fmt} {unit} '
               '|{bar}| [{elapsed}<{remaining}]{postfix}')
    tic = time.perf_counter()
    try:
      yield Stage(bar, total)
    finally:
      bar.close()
    self.say(f'{name}: {time.perf_counter() - tic:.1f} s')
