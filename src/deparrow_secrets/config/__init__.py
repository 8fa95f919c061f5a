"""Configuration (deparrow-secrets.yaml) and catalog (which values exist)."""
