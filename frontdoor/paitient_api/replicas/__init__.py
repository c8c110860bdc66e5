"""Which replica of a deployment a request goes to: the Ready gateways from the deployment's
EndpointSlices (``endpoints``), their load as the gateways report it plus this front door's own
requests (``loads``, ``poller``), and a choice by prefix affinity on a consistent-hash ring with
bounded loads, by least load or in turn (``ring``, ``prefix``, ``choose``), put together by
``router``. docs/routing.md has the design and its anchors.
"""
