"""Ray integration: run rollouts on a Ray cluster (``pip install "gepa-graph[ray]"``).

``RayExecutor`` (``gg.RayExecutor``, or ``gg.optimize(..., executor="ray")``) runs each rollout
as a Ray task in a worker process while the search stays in this one; ``LocalCluster`` starts a
single-machine cluster on 127.0.0.1 and stops it by its process ids (tests, benchmarks);
``unpicklable_part`` finds what in a system does not pickle.
"""

from gepa_graph.errors import RayExecutorError
from gepa_graph.integrations.ray.cluster import LocalCluster
from gepa_graph.integrations.ray.executor import RayExecutor
from gepa_graph.integrations.ray.pickling import unpicklable_part

__all__ = ["LocalCluster", "RayExecutor", "RayExecutorError", "unpicklable_part"]
