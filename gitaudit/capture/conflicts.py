"""Index conflicts after a merge, rebase, pull or cherry-pick stopped, read with pygit2.

Each conflicted path has up to three index stages: 1 (ancestor), 2 (ours),
3 (theirs). Their presence says what kind of conflict it is
(:func:`conflict_kind`, pure); a path that has an ancestor stage but did not
exist in the merge base was reached through a rename, so it is a rename
conflict (rename/delete, rename/modify).
"""

from __future__ import annotations

from gitaudit.capture import gitstate, history

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

KINDS = ("content", "add_add", "modify_delete", "rename")


def conflict_kind(
    ancestor: bool, ours: bool, theirs: bool, in_base: bool | None = None
) -> str:
    """Classify one conflicted path from which index stages it has.

    ``in_base`` says whether the path exists in the merge base (None: unknown).
    """
    sides = int(ours) + int(theirs)
    if ancestor and in_base is False:
        return "rename"
    if ancestor and sides == 2:
        return "content"
    if ancestor and sides == 1:
        return "modify_delete"
    if not ancestor and sides == 2:
        return "add_add"
    return "rename"  # a single stage: one side of a rename/rename split


def merge_base_for(repo: Any, layout: gitstate.Layout) -> str | None:
    """The commit the stopped operation merged against (for rename detection)."""
    refs = gitstate.RefReader(layout)
    head = refs.oid("HEAD")
    merge_head = refs.oid("MERGE_HEAD")
    if head and merge_head:
        return history.merge_base(repo, head, merge_head)
    for marker in ("REBASE_HEAD", "CHERRY_PICK_HEAD"):
        picked = refs.oid(marker)
        if picked:
            return history.parent_of(repo, picked)
    return refs.oid("REVERT_HEAD")


def index_conflicts(layout: gitstate.Layout) -> list[dict[str, str]]:
    """``[{path, kind}]`` for every conflicted path in the index, sorted by path."""
    repo = history.open_repository(layout.worktree or layout.git_dir)
    conflicts = repo.index.conflicts
    if conflicts is None:
        return []
    base = merge_base_for(repo, layout)
    files: list[dict[str, str]] = []
    for ancestor, ours, theirs in conflicts:
        entry = ours or theirs or ancestor
        path = entry.path
        in_base = history.path_in_commit(repo, base, path) if ancestor else None
        kind = conflict_kind(ancestor is not None, ours is not None, theirs is not None, in_base)
        files.append({"path": path, "kind": kind})
    return sorted(files, key=lambda item: item["path"])
