"""Boykov-Kolmogorov s-t minimum cuts of grid graphs by PyMaxflow, on numpy arrays. No JAX here:
the worker processes of `maxflow.parallel_cuts` import only this module."""
import numpy as np


def host_mincut(source, sink, right, left, down, up):
  """(flow, source_side [H, W] bool) of a grid graph by PyMaxflow (exact, int capacities)."""
  import maxflow as pymaxflow
  source, sink = np.asarray(source), np.asarray(sink)
  h, w = source.shape
  g = pymaxflow.Graph[int](h * w, 2 * h * w)   # nodes and edges reserved: no regrowth
  ids = g.add_grid_nodes((h, w))
  g.add_grid_tedges(ids, source, sink)
  for fwd, bwd, axis in ((right, left, 1), (down, up, 0)):
    fwd, bwd = np.asarray(fwd), np.asarray(bwd)
    if not fwd.size:
      continue
    first = (slice(None), slice(0, w - 1)) if axis else (slice(0, h - 1), slice(None))
    step = np.zeros((3, 3), np.int64)
    step[1 + (1 - axis), 1 + axis] = 1                 # x -> its right (axis 1) / down neighbour
    cap = np.zeros((h, w), np.int64)
    cap[first] = fwd
    if np.any(bwd):   # expansion moves put every edge weight forward: their reverse arcs are 0
      # add_grid_edges takes one weight per edge: the reverse arcs go in from the neighbour's side
      back = np.zeros((h, w), np.int64)
      back[(slice(None), slice(1, w)) if axis else (slice(1, h), slice(None))] = bwd
      g.add_grid_edges(ids, weights=back, structure=step[::-1, ::-1], symmetric=False)
    g.add_grid_edges(ids, weights=cap, structure=step, symmetric=False)
  flow = g.maxflow()
  return int(flow), ~g.get_grid_segments(ids)


def cut(source, sink, right, left, down, up):
  """(int32 flow, bool [H, W] source side) of `host_mincut`, the callback's result types."""
  flow, side = host_mincut(source, sink, right, left, down, up)
  return np.int32(flow), np.asarray(side, bool)


def _read(stream, n):
  data = b''
  while len(data) < n:
    part = stream.read(n - len(data))
    if not part:
      return None
    data += part
  return data


def send(stream, source, sink, right, left, down, up):
  """Writes one grid graph (int32 capacities of `host_mincut`'s shapes) to a `serve` process."""
  h, w = np.shape(source)
  stream.write(np.array([h, w], np.int32).tobytes() + b''.join(
      np.ascontiguousarray(a, np.int32).tobytes() for a in (source, sink, right, left, down, up)))
  stream.flush()


def receive(stream, h, w):
  """The (int32 flow, bool [h, w] source side) that a `serve` process wrote back."""
  data = _read(stream, 4 + h * w)
  if data is None:
    raise RuntimeError('the min-cut worker process exited')
  return np.frombuffer(data[:4], np.int32)[0], np.frombuffer(data[4:], bool).reshape(h, w)


def serve(inp, out):
  """Cuts the graphs `send` writes to `inp` and writes each `cut` to `out`, until `inp` ends."""
  while True:
    head = _read(inp, 8)
    if head is None:
      return
    h, w = (int(v) for v in np.frombuffer(head, np.int32))
    shapes = [(h, w), (h, w), (h, w - 1), (h, w - 1), (h - 1, w), (h - 1, w)]
    data = _read(inp, 4 * sum(a * b for a, b in shapes))
    arrays, at = [], 0
    for a, b in shapes:
      arrays.append(np.frombuffer(data, np.int32, a * b, at).reshape(a, b))
      at += 4 * a * b
    flow, side = cut(*arrays)
    out.write(np.int32(flow).tobytes() + side.tobytes())
    out.flush()


if __name__ == '__main__':   # a worker process of `maxflow.parallel_cuts`
  import sys
  serve(sys.stdin.buffer, sys.stdout.buffer)
