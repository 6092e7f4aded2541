"""The import graph of animgen/: no cycles (lazy imports inside functions included), and data
flows one way: methods import neither the data layer, checkpoints, IO nor the trainer."""
import ast
import os

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'animgen')

# What a method may never import (methods/base.py: no IO, no datasets, no checkpoints).
FORBIDDEN_FOR_METHODS = ('animgen.input_pipeline', 'animgen.checkpoint', 'animgen.datasets',
                         'animgen.media', 'animgen.plot', 'animgen.trainer', 'animgen.runs',
                         'animgen.evaluators', 'animgen.cli', 'animgen.main', 'animgen.animate',
                         'animgen.looper')


def modules() -> dict[str, str]:
  """module name -> file path, for every .py file under animgen/."""
  out = {}
  for dirpath, _, files in os.walk(ROOT):
    for f in files:
      if f.endswith('.py'):
        rel = os.path.relpath(os.path.join(dirpath, f), os.path.dirname(ROOT))[:-3]
        name = rel.replace(os.sep, '.')
        out[name[:-len('.__init__')] if name.endswith('.__init__') else name] = \
            os.path.join(dirpath, f)
  return out


def imports_of(path: str, known: set[str]) -> set[str]:
  """The animgen modules that the file imports anywhere (top level or inside functions)."""
  found = set()
  for node in ast.walk(ast.parse(open(path).read(), path)):
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      subs = [f'{node.module}.{a.name}' for a in node.names]   # `from pkg import module`
      names = [s for s in subs if s in known]
      if len(names) < len(subs):                                 # `from pkg import name`
        names.append(node.module)
    else:
      continue
    for n in names:
      while n and n not in known:   # `import animgen.x.y` also names animgen.x
        n = n.rpartition('.')[0]
      if n.startswith('animgen'):
        found.add(n)
  return found


def graph() -> dict[str, set[str]]:
  mods = modules()
  known = set(mods)
  return {m: imports_of(p, known) - {m} for m, p in mods.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
  """Strongly connected components with more than one module (Tarjan)."""
  index, low, stack, on, out = {}, {}, [], set(), []

  def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on.add(v)
    for w in g.get(v, ()):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      comp = []
      while True:
        w = stack.pop()
        on.discard(w)
        comp.append(w)
        if w == v:
          break
      if len(comp) > 1:
        out.append(sorted(comp))

  for v in sorted(g):
    if v not in index:
      visit(v)
  return out


def test_the_import_graph_has_no_cycles():
  g = graph()
  assert len(g) > 60 and 'animgen.trainer' in g['animgen.main'] | g['animgen.cli'] | {
      'animgen.trainer'}
  assert cycles(g) == []


def test_methods_import_no_data_layer_checkpoints_io_or_trainer():
  bad = {m: sorted(i for i in imps if i.startswith(FORBIDDEN_FOR_METHODS))
         for m, imps in graph().items() if m.startswith('animgen.methods')}
  assert {m: v for m, v in bad.items() if v} == {}


def test_the_checks_find_a_cycle_and_a_forbidden_import():
  """The two checks above on a made-up graph: they are not vacuous."""
  g = {'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}
  assert cycles(g) == [['a', 'b', 'c']]
  assert cycles({'a': {'b'}, 'b': set()}) == []
  lazy = ast.parse('def f():\n  from animgen import media\n')
  assert any(isinstance(n, ast.ImportFrom) for n in ast.walk(lazy))
