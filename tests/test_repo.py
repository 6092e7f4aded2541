"""The README's two commands come first, and CI runs the test command verbatim."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_ci_runs_the_readme_test_command_verbatim():
  readme = open(os.path.join(ROOT, 'README.md')).read()
  blocks = re.findall(r'```bash\n(.*?)\n```', readme, re.S)
  run_cmd, test_cmd = blocks[0].strip(), blocks[1].strip()
  assert 'animgen.main --config=configs/landscape.py' in run_cmd
  assert 'pytest' in test_cmd
  # the two commands are the first two blocks, right under the title
  assert readme.index(run_cmd) < readme.index(test_cmd) < readme.index('\n## ')
  ci = open(os.path.join(ROOT, '.ci', 'run')).read().splitlines()
  assert test_cmd in ci
