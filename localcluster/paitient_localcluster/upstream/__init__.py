"""What comes from upstream: pinned versions, their Go builds into the binary cache, and
cert-manager's CRDs."""
