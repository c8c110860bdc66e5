"""What the front door and every gateway know of callers: the directory of keys, tenants and
tiers (``directory``), fed by watches of the Kubernetes API (``kubernetes_source``) or a file."""
