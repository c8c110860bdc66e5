"""The control plane's own parts: command lines and ports, certificates, kubeconfigs, health
probes, the audit log."""
