"""deparrow-secrets: secrets management for DEparrow deployments on Kubernetes."""

__version__ = "0.1.0"
