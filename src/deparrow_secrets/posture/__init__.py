"""Posture: the guide's seven security practices as checks with evidence and a fix.

One module per practice (`audit`, `rotation`, `encryption`, `network`, `enforced`);
`checks.run_posture` runs them for one environment and returns findings of the shared
model (lint/findings.py: POSTURE_RULES), one per practice and provider.
"""
