"""The real node ``cpu-node-0``: its configuration and command lines, its programs and images,
and the cluster DNS that runs on it."""
