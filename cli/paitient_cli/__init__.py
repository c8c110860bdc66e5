"""``paitient``: the admin CLI for tenants and API keys, against the current kubeconfig."""
