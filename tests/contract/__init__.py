"""Contracts shared with the SDKs: data generated from the service's own code."""
