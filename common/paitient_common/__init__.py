"""Shared by every PaiTIENT component: API-key verification, the error shape, configuration helpers."""
