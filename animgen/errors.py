"""User-facing errors: one line that says what is wrong and what to do."""


class InputError(Exception):
  """Bad user input (file, flag, dataset layout). The CLI prints it and exits 2."""
