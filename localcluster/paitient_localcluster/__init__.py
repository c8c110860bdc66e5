"""A real local Kubernetes cluster for tests, benchmarks and the demo: control plane, a real
node and KWOK's simulated GPU nodes, built from the official Go modules and run inside namespaces
of its own; see ``cluster.LocalCluster`` and the folders ``host``, ``upstream``, ``controlplane``,
``node``, ``simulated`` and ``stack`` (docs/local-cluster.md, "Where things live").
"""
