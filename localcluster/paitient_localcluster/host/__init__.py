"""Host plumbing: the Linux namespaces and cgroups the cluster lives in, the launcher that joins
them, the processes it starts and the relay from the host's loopback into its namespace."""
