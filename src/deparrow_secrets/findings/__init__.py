"""Findings every report shares: the finding, its rule's metadata, the severities, the
registry of declared rules and the text/json/SARIF renderings.

Rules are declared where they are implemented (each lint rule module, scan, doctor,
each posture practice); this package holds only the shared machinery and imports
nothing else of deparrow_secrets but the version.
"""

from deparrow_secrets.findings.model import ERROR, NOTE, WARNING, Finding, Rule, display_path
from deparrow_secrets.findings.registry import declare, is_declared, rule

__all__ = ["ERROR", "NOTE", "WARNING", "Finding", "Rule", "declare", "display_path",
           "is_declared", "rule"]
