"""Shared test setup: the local control-plane fixtures come from paitient_localcluster."""

pytest_plugins = ["paitient_localcluster.pytest_plugin"]
