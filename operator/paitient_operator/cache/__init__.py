"""Watch-fed caches of what the reconcilers read: the objects themselves, their children, their
pods and the cluster settings around them, kept by list + watch and fed the operator's own writes
(``store.ClusterCache``), so a reconcile reads no object with a request."""
