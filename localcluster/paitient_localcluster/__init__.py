"""A real local Kubernetes control plane for tests and the demo.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and KWOK, built from the official
Go modules and run on loopback; see ``cluster.LocalCluster``.
"""
