"""The two kinds of errors a user sees: each is one line that says what is wrong and what to do."""


class InputError(Exception):
  """Bad user input (file, flag, config value, dataset layout). The CLI prints it, exits 2."""


class TrainingDiverged(RuntimeError):
  """The loss became NaN or Inf; the last good checkpoint is kept. The CLI prints it, exits 1."""


class Interrupted(Exception):
  """Training stopped by SIGTERM after saving a checkpoint. The CLI exits EXIT_INTERRUPTED."""


# sysexits.h EX_TEMPFAIL ("try again later"): a scheduler tells a preempted run from a finished
# (0), diverged (1) or misconfigured (2) one and requeues it; the rerun resumes.
EXIT_INTERRUPTED = 75
