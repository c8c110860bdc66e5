"""Typed custom resources (pydantic, the single source of truth) and the CRDs generated from them."""
