"""The control plane's own parts: command lines and ports, certificates, kubeconfigs, the
audit log."""
