"""Probes for load balancers and orchestrators: /healthz and /readyz."""
