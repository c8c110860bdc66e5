"""The cluster's address plan (pure constants). Every address here exists only inside the
cluster's network namespace; the host sees nothing but the relay's ports on 127.0.0.1."""

from __future__ import annotations

SERVICE_CIDR = "10.0.0.0/16"  # room for thousands of Services (benchmarks)
API_SERVICE_IP = "10.0.0.1"  # the `kubernetes` Service: first address of the range
DNS_SERVICE_IP = "10.0.0.10"  # the `kube-dns` Service
NODE_IP = "10.240.0.2"  # the real node's address, on a veth inside the namespace
NODE_PREFIX = 24
CLUSTER_CIDR = "10.244.0.0/16"  # pods of the real node
NODE_POD_CIDR = "10.244.0.0/24"
# KWOK hands the simulated nodes' pods addresses from a range of their own, so a simulated pod
# never shares an address with a real one.
SIMULATED_POD_CIDR = "10.245.0.1/16"
