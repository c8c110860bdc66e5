"""``paitient-api``: the front door. The /v1 REST API the SDKs speak: deployments, generate,
subscription; it authenticates like the gateways and creates ModelDeployments for the caller's
tenant."""
