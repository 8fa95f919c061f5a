"""Posture: the guide's seven security practices as checks with evidence and a fix.

One module per practice (`audit`, `rotation`, `encryption`, `network`, `enforced`);
`checks.run_posture` runs them for one environment and returns findings of the shared
model (`deparrow_secrets.findings`), one per practice and provider; each practice module
declares its rule, `checks.POSTURE_RULES` lists them in the guide's order.
"""
