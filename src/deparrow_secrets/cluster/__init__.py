"""The cluster layer: the only package that talks to a Kubernetes API server.

`api.KubeClient` is the interface the operations use; `official` implements it with
the official `kubernetes` client (the `k8s` extra, imported only when connecting).
"""
