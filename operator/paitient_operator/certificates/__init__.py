"""Serving certificates of the gateways: the operator's own CA (``authority``), pure X.509
(``x509``), the per-deployment Secret or cert-manager Certificate (``serving``), the step the
reconciler runs (``issuer``), and when each is renewed (``renewals``)."""
