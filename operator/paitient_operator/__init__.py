"""The ModelDeployment and Tenant operator (kopf): typed resources, pure builders, thin handlers."""
