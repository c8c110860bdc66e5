"""Stand-ins for what this machine lacks: KWOK's simulated GPU nodes and their pods' stages, the
volume provisioner, and the local data plane that runs model pods' gateways for KWOK's pods."""
