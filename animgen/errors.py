"""The two kinds of errors a user sees: each is one line that says what is wrong and what to do."""


class InputError(Exception):
  """Bad user input (file, flag, config value, dataset layout). The CLI prints it, exits 2."""


class TrainingDiverged(RuntimeError):
  """The loss became NaN or Inf; the last good checkpoint is kept. The CLI prints it, exits 1."""
