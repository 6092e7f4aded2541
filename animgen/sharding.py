"""One mesh over all devices with a single `data` axis: params replicated, batch sharded."""
import os

import jax
from jax.sharding import NamedSharding, PartitionSpec as P
import numpy as np


def maybe_initialize_distributed():
  """Multi-host: connect the processes (TPU pods, SLURM, or JAX_COORDINATOR_ADDRESS set). On
  other clusters set JAX_COORDINATOR_ADDRESS=host:port, JAX_NUM_PROCESSES and JAX_PROCESS_ID in
  each process (tests/test_multihost.py runs two on localhost this way)."""
  if jax.distributed.is_initialized() if hasattr(jax.distributed, 'is_initialized') else False:
    return
  if any(k in os.environ for k in ('JAX_COORDINATOR_ADDRESS', 'SLURM_NTASKS', 'TPU_WORKER_HOSTNAMES')):
    if int(os.environ.get('SLURM_NTASKS', '2')) > 1:
      jax.config.update('jax_cpu_collectives_implementation', 'gloo')  # for CPU devices only
      explicit = {k: int(os.environ[v]) for k, v in (('num_processes', 'JAX_NUM_PROCESSES'),
                                                      ('process_id', 'JAX_PROCESS_ID'))
                  if v in os.environ}
      jax.distributed.initialize(**explicit)


def make_mesh() -> jax.sharding.Mesh:
  return jax.make_mesh((jax.device_count(),), ('data',),
                       axis_types=(jax.sharding.AxisType.Auto,))


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh) -> NamedSharding:
  return NamedSharding(mesh, P('data'))


def shard_batch(batch, mesh):
  """Process-local numpy batch -> global jax.Arrays sharded over `data` on the leading axis."""
  sharding = batch_sharded(mesh)
  return jax.tree_util.tree_map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch)
