"""`render` as one call: the tree rendered, then written or compared; the outcome says
what the command prints and its exit code.

The click command (`cli/tree_cmds.py`) and the CLI's fast path (`cli/__init__.py`, which
runs `render` without importing click) both print `RenderOutcome.messages`, so the two
cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deparrow_secrets.errors import EXIT_FINDINGS, EXIT_OK
from deparrow_secrets.project import Project
from deparrow_secrets.render.tree import TreeDiff, check_tree, render_tree, write_tree


class RenderOutcome:
    """What one `render` did: every file of the tree (relative to `root`), and what it
    wrote or removed (`written`, None for --check) or found (`diff`, None when writing)."""

    def __init__(self, root: Path, files: list[str], written: list[str] | None = None,
                 diff: TreeDiff | None = None) -> None:
        self.root = root
        self.files = files
        self.written = written
        self.diff = diff

    @property
    def exit_code(self) -> int:
        return EXIT_FINDINGS if self.diff is not None and not self.diff.clean else EXIT_OK

    def messages(self, output: str, show_diff: bool) -> list[tuple[str, bool]]:
        """(line, to stderr) in the order the command prints them."""
        root, diff = self.root, self.diff
        if diff is None:
            written = self.written or []
            if output == "json":
                return [(_json({"root": str(root), "files": self.files,
                                "written": written}), False)]
            return [(f"wrote {root / rel}", False) for rel in written] + [
                (f"{root}: {len(self.files)} files, {len(written)} changed", False)]
        if output == "json":
            return [(_json({"root": str(root), "upToDate": diff.clean, "missing": diff.missing,
                            "changed": diff.changed, "stale": diff.stale,
                            **({"diffs": diff.diffs} if show_diff else {})}), False)]
        if diff.clean:
            return [(f"{root}: up to date ({len(self.files)} files)", False)]
        out = [(f"missing  {rel}", False) for rel in diff.missing]
        for rel in diff.changed:
            out.append((f"changed  {rel}", False))
            if show_diff:
                out.append((diff.diffs[rel], False))
        out += [(f"stale    {rel}", False) for rel in diff.stale]
        out.append((f"{root}: out of date; run `deparrow-secrets render`", True))
        return out


def render_project(project: Project, check: bool) -> RenderOutcome:
    """Render every environment; write the tree, or with `check` compare it."""
    root = project.manifests_dir  # refused (outside the project) before anything is read
    files = render_tree(project.config, project.catalog)
    if check:
        return RenderOutcome(root, list(files), diff=check_tree(root, files))
    return RenderOutcome(root, list(files), written=write_tree(root, files, project.config.root))


def _json(data: Any) -> str:
    import json  # only -o json needs it

    return json.dumps(data, indent=2, default=str)  # as every other command's JSON
