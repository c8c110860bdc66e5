"""Errors of the local cluster, each a message a person can act on."""

from __future__ import annotations


class ClusterError(RuntimeError):
    """Something stopped the local cluster; the message says what and what to do."""
