"""Leak scan: an environment's actual secret values (and base64 forms) in files and git
history, plus generic detection through detect-secrets. Reports never hold a value."""
