"""Index conflicts after a merge, rebase, pull or cherry-pick stopped, read with pygit2.

Each conflicted path has up to three index stages: 1 (ancestor), 2 (ours),
3 (theirs). Their presence says what kind of conflict it is
(:func:`conflict_kind`, pure); a path that has an ancestor stage but did not
exist in the merge base was reached through a rename, so it is a rename
conflict (rename/delete, rename/modify).

The lifecycle (detected, then resolved or aborted) is shared by every capture
path: the wrapper, the hooks and the daemon's trace2 receiver all describe a
conflict with the same saved *state* (:func:`new_state`) and build the same
events (:func:`lifecycle_event`). A conflict's detected event id is derived
from the stop itself (git dir, commit being applied, when git stopped:
:func:`conflict_id`), so two paths that see the same stop name it the same
way and their resolutions point at the same parent. Where no path saw the
stop happen (plain git with hooks only), :func:`replay` redoes the merge in
memory to recover each file's stages; :func:`follow_up` tells whether a later
commit concluded the stop (:func:`concluding_commit`) or it was abandoned.
A conflict ends once: each path remembers the stops whose conflict has ended
(:func:`gitstate.end_conflict_state`, the daemon in memory) and never takes a
marker git left behind for one of them for a stop again.
"""

from __future__ import annotations

import os
import time

from gitaudit import catalog
from gitaudit.capture import gitstate, history

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Container
    from typing import Any

KINDS = ("content", "add_add", "modify_delete", "rename")
MAX_WALK = 200  # first-parent steps searched for the commit that concluded a stop


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
    """The commit the stopped operation merged against (for rename detection).

    Read from the stop git is on (:func:`gitstate.current_stop`), not from
    whichever marker file exists: git leaves ``REBASE_HEAD`` behind after a
    rebase, and its parent is no base of a later merge or cherry-pick.
    """
    stop = gitstate.current_stop(layout)
    if stop is None:
        return None
    stopped_in, applied = stop[0], stop[1]
    if stopped_in == "merge":
        head = gitstate.RefReader(layout).oid("HEAD")
        return history.merge_base(repo, head, applied) if head else None
    if stopped_in == "revert":  # undoing the commit: its own tree is the base
        return applied
    return history.parent_of(repo, applied)


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
    """How one file was resolved: the result blob (None: absent) against the saved stages.

    ``stages["claude"]``, when ``gitaudit resolve`` staged a proposal for the file
    (:func:`note_claude`), is the blob it staged: a result that kept it is ``claude``.
    """
    if result is None:
        return "deleted"
    if result == stages.get("claude"):
        return "claude"
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


def resolved_files(repo: Any, files: list[dict[str, Any]], result: str | None
                   ) -> list[dict[str, Any]]:
    """``[{path, kind, resolution}]``: each saved file's stages against the result commit."""
    found = []
    for item in files:
        blob = blob_at(repo, result, item["path"]) if repo is not None else None
        found.append({"path": item["path"], "kind": item["kind"],
                      "resolution": resolution(item.get("stages") or {}, blob)})
    return found


def note_claude(layout: gitstate.Layout, detected_id: str, path: str, blob: str) -> bool:
    """Remember in the saved conflict state that ``gitaudit resolve`` staged ``blob`` for
    ``path``, so the stop's ``conflict.resolved`` says ``claude`` for it when the commit
    keeps it. False when no capture path saved this stop (nothing to update)."""
    state = gitstate.load_conflict_state(gitstate.conflict_state_path(layout))
    if state is None or state.get("detected_id") != detected_id:
        return False
    files = state.get("files")
    for item in files if isinstance(files, list) else []:
        if isinstance(item, dict) and item.get("path") == path:
            stages = item.setdefault("stages", {})
            if isinstance(stages, dict):
                stages["claude"] = blob
                gitstate.save_conflict_state(layout, state)
                return True
    return False


# --- recovering the conflicts of a stop nobody saw happen ----------------------------------


def _commit(repo: Any, oid: str | None) -> Any:
    commit_id = history.commit_id(repo, oid)
    return None if commit_id is None else repo[commit_id]


def _replay_index(repo: Any, stopped_in: str, head: Any, applied: Any) -> tuple[Any, str | None]:
    """(in-memory merged index, merge base for rename detection) of a stopped operation."""
    if stopped_in == "merge":
        return repo.merge_commits(head, applied), history.merge_base(repo, str(head.id),
                                                                     str(applied.id))
    parent = applied.parents[0] if applied.parents else None
    empty = repo[repo.TreeBuilder().write()]
    parent_tree = parent.tree if parent is not None else empty
    if stopped_in == "revert":  # undo the commit: its tree is the base, its parent's "theirs"
        return repo.merge_trees(applied.tree, head.tree, parent_tree), str(applied.id)
    base = str(parent.id) if parent is not None else None
    return repo.merge_trees(parent_tree, head.tree, applied.tree), base


def _pair_renames(entries: list[tuple[Any, Any, Any]]) -> list[tuple[Any, Any, Any, bool]]:
    """libgit2 splits a rename conflict in two (the old path with only an ancestor, the new
    path with one side and none); git keeps one path with the ancestor's blob as stage 1.
    Pair them back (same blob first) so both read the same: (ancestor, ours, theirs, renamed)."""
    sources = [a for a, o, t in entries if a is not None and o is None and t is None]
    paired: list[tuple[Any, Any, Any, bool]] = []
    for ancestor, ours, theirs in entries:
        if ancestor is not None and ours is None and theirs is None:
            continue
        if ancestor is None and (ours is None) != (theirs is None) and sources:
            side = ours or theirs
            source = next((s for s in sources if s.id == side.id), sources[0])
            sources.remove(source)
            paired.append((source, ours, theirs, True))
            continue
        paired.append((ancestor, ours, theirs, False))
    return paired


def _merged_hunks(repo: Any, ancestor: Any, ours: Any, theirs: Any) -> int:
    if ours is None or theirs is None:
        return 0  # git leaves one side's file without markers
    try:
        merged = repo.merge_file_from_index(ancestor, ours, theirs)
    except Exception:  # noqa: BLE001 - binary or odd content: no markers to count
        return 0
    text = getattr(merged, "contents", merged)
    return count_hunks(text.encode("utf-8", "surrogateescape") if isinstance(text, str) else b"")


def replay(repo: Any, stopped_in: str, head: str | None, applied: str | None
           ) -> list[dict[str, Any]]:
    """Redo a stopped merge, cherry-pick, revert or rebase step in memory.

    ``[{path, kind, hunks, stages}]`` as :func:`read_conflicts` gives from the
    index, whatever the user has resolved since (the index no longer says).
    Empty if the commits are unknown or the replay merges cleanly.
    """
    head_commit, applied_commit = _commit(repo, head), _commit(repo, applied)
    if head_commit is None or applied_commit is None:
        return []
    index, base = _replay_index(repo, stopped_in, head_commit, applied_commit)
    if index.conflicts is None:
        return []
    files: list[dict[str, Any]] = []
    for ancestor, ours, theirs, renamed in _pair_renames(list(index.conflicts)):
        path = (ours or theirs or ancestor).path
        in_base = history.path_in_commit(repo, base, path) if ancestor else None
        kind = "rename" if renamed else conflict_kind(
            ancestor is not None, ours is not None, theirs is not None, in_base
        )
        stages = {
            name: str(stage.id) if stage is not None else None
            for name, stage in (("base", ancestor), ("ours", ours), ("theirs", theirs))
        }
        files.append({"path": path, "kind": kind,
                      "hunks": _merged_hunks(repo, ancestor, ours, theirs), "stages": stages})
    return sorted(files, key=lambda item: item["path"])


# --- what became of a saved conflict -------------------------------------------------------


def _same_pick(first: Any, second: Any) -> bool:
    """Same author, date and summary line: what a cherry-pick or rebase step keeps."""
    a, b = first.author, second.author
    summary = [(commit.message or "").split("\n", 1)[0] for commit in (first, second)]
    return (a.name, a.email, a.time, a.offset) == (b.name, b.email, b.time, b.offset) and (
        summary[0] == summary[1]
    )


def concludes(repo: Any, commit: Any, state: dict[str, Any]) -> bool:
    """True if ``commit`` is the one that ended the saved stop.

    A merge's commit has the merged commit as a parent; a cherry-pick's or a
    rebase step's keeps the picked commit's author, date and summary; a
    revert's message names the reverted commit.
    """
    applied = state.get("stopped_at")
    stopped_in = state.get("stopped_in")
    if not isinstance(applied, str):
        return False
    if stopped_in == "merge":
        return applied in [str(parent) for parent in commit.parent_ids[1:]]
    if stopped_in == "revert":
        return applied in (commit.message or "")
    picked = _commit(repo, applied)
    return picked is not None and _same_pick(picked, commit)


def concluding_commit(repo: Any, state: dict[str, Any], head: str | None) -> str | None:
    """The commit on HEAD's first-parent line that concluded the saved stop, if any.

    A rebase that went on past the stop without a commit for it (the
    resolution left nothing to commit: the step was dropped) concluded it
    with the tree it stopped on: the saved ``head`` is then the result.
    """
    start = state.get("head")
    commit = _commit(repo, head)
    for _ in range(MAX_WALK):
        if commit is None or not commit.parent_ids or str(commit.id) == start:
            return None
        if str(commit.parent_ids[0]) == start:
            if concludes(repo, commit, state):
                return str(commit.id)
            return start if state.get("stopped_in") == "rebase" else None
        commit = commit.parents[0]
    return None


def follow_up(repo: Any, state: dict[str, Any], stop: tuple[str, str, int] | None,
              head: str | None, action: str | None = None,
              rewritten: dict[str, str] | None = None, rebasing: bool = False,
              ) -> tuple[str, str | None] | None:
    """What became of a saved conflict, seen after it was saved.

    ``("resolved", result commit)``, ``("aborted", "abort" | "skip")``, or
    None while the same stop still stands. ``action`` is what the command
    that ended it asked for, when known: ``abort``/``skip``, or ``finish``
    when a rebase has just ended (``rewritten`` then maps old commits to new).
    ``rebasing``: a rebase is still in progress.
    """
    if action in {"abort", "skip"}:
        return "aborted", action
    result = concluding_commit(repo, state, head)
    if result is not None:
        return "resolved", result
    if action == "finish" and state.get("stopped_in") == "rebase":
        applied = str(state.get("stopped_at"))
        return "resolved", (rewritten or {}).get(applied) or state.get("head")
    if stop is not None and stop[1] == state.get("stopped_at"):
        return None
    if stop is None and rebasing and state.get("stopped_in") == "rebase" and (
        head == state.get("head")
    ):
        return None  # the rebase goes on and has not committed since: decided after it has
    skipped = stop is not None and stop[0] == state.get("stopped_in")
    return "aborted", "skip" if skipped else "abort"


def observe(repo: Any, layout: gitstate.Layout, previous: dict[str, Any] | None, *,
            head: str | None, action: str | None = None,
            rewritten: dict[str, str] | None = None,
            detect: Callable[[tuple[str, str, int]], list[dict[str, Any]]] | None = None,
            ended: Container[tuple[str, str, int]] = (),
            ) -> tuple[tuple[str, str | None] | None, tuple[tuple[str, str, int],
                                                          list[dict[str, Any]]] | None]:
    """One look at a repository after a command or hook: (verdict on ``previous``, new stop).

    The verdict is :func:`follow_up`'s (None while ``previous`` still
    stands, or when there was none). A new stop is ``(stop, files)`` when
    ``detect`` is given, git is stopped on another commit than ``previous``
    and ``detect(stop)`` finds conflicts. Only call ``detect``-ing where
    HEAD is still where the stop left it (a rebase step's commit moves it).
    ``ended``: stops whose conflict has already ended; a marker git left
    behind for one of them is no stop (a conflict ends once).
    """
    stop = gitstate.current_stop(layout, ended)
    verdict = None
    if previous is not None:
        rebasing = gitstate.read_rebase_state(layout) is not None
        verdict = follow_up(repo, previous, stop, head, action, rewritten, rebasing)
        if verdict is None:
            return None, None
    if stop is None or detect is None or (
        previous is not None and stop[1] == previous.get("stopped_at")
    ):
        return verdict, None
    files = detect(stop)
    return verdict, ((stop, files) if files else None)


# --- the events ----------------------------------------------------------------------------


def conflict_id(layout: gitstate.Layout, stop: tuple[str, str, int]) -> str:
    """The detected event's id, the same from every capture path that sees this stop."""
    import hashlib

    key = f"{os.path.realpath(layout.git_dir)}\0{stop[1]}\0{stop[2]}".encode()
    return catalog.uuid7(stop[2] // 1_000_000, hashlib.sha256(key).digest())


def new_state(*, detected_id: str, correlation_id: str, operation: str,
              stop: tuple[str, str, int] | None, stopped_in: str | None, head: str | None,
              files: list[dict[str, Any]]) -> dict[str, Any]:
    """What is kept about a detected conflict until it is concluded (see the module doc)."""
    return {
        "detected_id": detected_id,
        "correlation_id": correlation_id,
        "detected_at": stop[2] / 1e9 if stop is not None else time.time(),
        "operation": operation,
        "stopped_in": stopped_in,
        "ours_is": "upstream" if stopped_in == "rebase" else "HEAD",
        "stopped_at": stop[1] if stop is not None else None,
        "stop": list(stop) if stop is not None else None,  # recorded as ended with its ending
        "head": head,
        "files": files,
    }


def detected_details(state: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """``conflict.detected`` details: files with kind and hunks, and where it stopped."""
    return {
        "files": [{key: item[key] for key in ("path", "kind", "hunks")}
                  for item in state.get("files") or []],
        "operation": state.get("operation"),
        "stopped_in": state.get("stopped_in"),
        "ours_is": state.get("ours_is"),
        "stopped_at": state.get("stopped_at"),
        **extra,
    }


def concluded_details(repo: Any, state: dict[str, Any], verdict: tuple[str, str | None],
                      concluded_by: str, **extra: Any) -> tuple[str, dict[str, Any]]:
    """(operation, details) of ``conflict.resolved`` or ``conflict.aborted`` for a verdict."""
    found: dict[str, Any] = {key: state.get(key) for key in ("operation", "stopped_in", "ours_is")}
    found["stopped_at"] = state.get("stopped_at")
    found["concluded_by"] = concluded_by
    files = state.get("files") or []
    if verdict[0] == "aborted":
        found["action"] = verdict[1]
        found["files"] = [{"path": item["path"], "kind": item["kind"]} for item in files]
        return "conflict.aborted", {**found, **extra}
    result = verdict[1]
    detected_at = state.get("detected_at")
    elapsed = None
    if isinstance(detected_at, int | float):
        elapsed = max(round((time.time() - detected_at) * 1000, 3), 0.0)
    found.setdefault("action", "commit")
    found.update(files=resolved_files(repo, files, result), time_to_resolve_ms=elapsed,
                 result_commit=result)
    return "conflict.resolved", {**found, **extra}


def lifecycle_event(operation: str, event_details: dict[str, Any], *, source: str,
                    state: dict[str, Any], actor: dict[str, Any], repo: dict[str, Any] | None,
                    exit_code: int | None, event_id: str | None = None,
                    parent_id: str | None = None, occurred_at: float | None = None
                    ) -> dict[str, Any]:
    """A ``conflict.*`` event. Resolutions and aborts point at the detected event."""
    detected = operation == "conflict.detected"
    outcome = "success" if operation == "conflict.resolved" else "failure"
    return {
        "id": event_id or catalog.uuid7(),
        "schema_version": catalog.SCHEMA_VERSION,
        "occurred_at": catalog.now_rfc3339(occurred_at),
        "duration_ms": None,
        "operation": operation,
        "category": catalog.category_for(operation, event_details),
        "outcome": outcome,
        "severity": catalog.severity_for(operation, event_details, outcome),
        "source": source,
        "correlation_id": state.get("correlation_id"),
        "parent_id": parent_id if detected else state.get("detected_id"),
        "actor": actor,
        "repo": repo,
        "result": {"exit_code": exit_code, "error": None},
        "details": event_details,
    }
