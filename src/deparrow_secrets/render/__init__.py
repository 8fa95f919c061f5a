"""Rendering of Kubernetes manifests (the deparrow/k8s tree) and their validation."""
