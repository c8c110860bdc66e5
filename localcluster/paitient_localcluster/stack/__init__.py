"""The product on the local cluster (``make up``, ``make demo``, ``make down``): the Helm chart,
the front door's local certificate, the tiny model's claim and the demo."""
