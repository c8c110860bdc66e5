"""The gateway sidecar: the only way into a model pod (auth, limits, metering, audit)."""
