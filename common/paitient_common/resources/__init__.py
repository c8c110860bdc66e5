"""The API's typed custom resources (pydantic, the single source of truth) that every component
reads, the CRDs generated from them, and their installer for local clusters and tests."""
