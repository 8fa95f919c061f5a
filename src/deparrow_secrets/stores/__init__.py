"""The store contract every provider's store implements: `interface.SecretStore`, the
catalog-to-store `layout`, and the `retry` policy with its whole-call deadline.

The stores themselves live in their provider packages (`deparrow_secrets.providers`).
"""
