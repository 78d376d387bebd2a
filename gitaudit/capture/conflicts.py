"""Index conflicts after a merge, rebase, pull or cherry-pick stopped, read with pygit2.

Each conflicted path has up to three index stages: 1 (ancestor), 2 (ours),
3 (theirs). Their presence says what kind of conflict it is
(:func:`conflict_kind`, pure); a path that has an ancestor stage but did not
exist in the merge base was reached through a rename, so it is a rename
conflict (rename/delete, rename/modify).
"""

from __future__ import annotations

import os

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


def count_hunks(data: bytes) -> int:
    """Conflict hunks in a work-tree file: lines that start with ``<<<<<<<``."""
    return sum(1 for line in data.split(b"\n") if line.startswith(b"<<<<<<<"))


def _file_hunks(worktree: str | None, path: str) -> int:
    if worktree is None:
        return 0
    try:
        with open(os.path.join(worktree, path), "rb") as handle:
            return count_hunks(handle.read())
    except OSError:
        return 0  # deleted on one side, or not a regular file


def read_conflicts(layout: gitstate.Layout) -> list[dict[str, Any]]:
    """``[{path, kind, hunks, stages: {base, ours, theirs}}]`` for every conflicted path.

    ``stages`` holds the blob id of each index stage (None where a side has
    none): stage 1 is ``base``, stage 2 ``ours``, stage 3 ``theirs``, as git
    defines them (in a rebase, "ours" is the upstream). Sorted by path.
    """
    repo = history.open_repository(layout.worktree or layout.git_dir)
    conflicts = repo.index.conflicts
    if conflicts is None:
        return []
    base = merge_base_for(repo, layout)
    files: list[dict[str, Any]] = []
    for ancestor, ours, theirs in conflicts:
        entry = ours or theirs or ancestor
        path = entry.path
        in_base = history.path_in_commit(repo, base, path) if ancestor else None
        kind = conflict_kind(ancestor is not None, ours is not None, theirs is not None, in_base)
        stages = {
            name: str(stage.id) if stage is not None else None
            for name, stage in (("base", ancestor), ("ours", ours), ("theirs", theirs))
        }
        files.append({"path": path, "kind": kind, "hunks": _file_hunks(layout.worktree, path),
                      "stages": stages})
    return sorted(files, key=lambda item: item["path"])


def index_conflicts(layout: gitstate.Layout) -> list[dict[str, Any]]:
    """``[{path, kind, hunks}]`` for every conflicted path in the index, sorted by path."""
    return [
        {key: item[key] for key in ("path", "kind", "hunks")} for item in read_conflicts(layout)
    ]


def resolution(stages: dict[str, str | None], result: str | None) -> str:
    """How one file was resolved: the result blob (None: absent) against the saved stages."""
    if result is None:
        return "deleted"
    if result == stages.get("ours"):
        return "ours"
    if result == stages.get("theirs"):
        return "theirs"
    return "manual"


def blob_at(repo: Any, commit: str | None, path: str) -> str | None:
    """The blob id of ``path`` in a commit's tree (None if absent or the commit is unknown)."""
    commit_id = history.commit_id(repo, commit)
    if commit_id is None:
        return None
    tree = repo[commit_id].tree
    try:
        return str(tree[path].id)
    except KeyError:
        return None
