"""What the commands do with a store: provision, verify, status, export, quickstart.

Each function returns data; printing belongs to the CLI.
"""
