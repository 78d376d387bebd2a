"""Commit-graph questions answered with pygit2: ancestry, commit counts, rebase pairing.

Only rare, non-read operations (push, rebase, pull) reach this module, so
pygit2's ~100 ms import is paid there and never by ``git status``. The pure
part (:func:`pair_commits`) is separate from the graph walks so it is tested
without a repository.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

# A rebase onto an upstream that moved by more than this many commits still
# pairs what it can; the walk just stops (bounded cost on huge histories).
MAX_WALK = 20000


class CommitKey(NamedTuple):
    """What a rebase keeps of a commit: author identity and date, and the message."""

    name: str
    email: str
    time: int
    offset: int
    message: str


def ensure_site_packages() -> None:
    """Make site-packages importable if Python started without them (``-S``).

    Hooks and the shim start Python with ``-S``: their common path is stdlib and
    gitaudit only, and skipping ``site`` saves about a millisecond. pygit2 lives
    in site-packages, and every way to it goes through :func:`open_repository`,
    which adds them first.
    """
    import sys

    if sys.flags.no_site and not getattr(ensure_site_packages, "done", False):
        import site

        site.main()
        ensure_site_packages.done = True  # type: ignore[attr-defined]


def open_repository(git_dir: str) -> Any:
    """A pygit2 repository for ``git_dir`` (imported here, lazily)."""
    ensure_site_packages()
    import pygit2

    return pygit2.Repository(git_dir)


def _oid(repo: Any, text: str | None) -> Any:
    """pygit2 Oid of a commit that exists locally, or None."""
    if not text or len(text) not in (40, 64):
        return None
    import pygit2

    try:
        obj = repo.get(text)
        if obj is None:
            return None
        return obj.peel(pygit2.Commit).id
    except (ValueError, KeyError, pygit2.GitError):
        return None


def commit_id(repo: Any, text: str | None) -> Any:
    """pygit2 Oid of a commit that exists locally (or None): for callers outside this module."""
    return _oid(repo, text)


def is_fast_forward(repo: Any, old: str, new: str) -> bool | None:
    """True if ``new`` contains ``old``; None if either commit is missing locally."""
    old_id, new_id = _oid(repo, old), _oid(repo, new)
    if old_id is None or new_id is None:
        return None
    return bool(old_id == new_id or repo.descendant_of(new_id, old_id))


def count_commits(repo: Any, tips: Iterable[str], hidden: Iterable[str]) -> int:
    """Commits reachable from ``tips`` but from none of ``hidden`` (missing ids are ignored)."""
    import pygit2

    tip_ids = [oid for oid in (_oid(repo, tip) for tip in tips) if oid is not None]
    if not tip_ids:
        return 0
    walker = repo.walk(tip_ids[0], pygit2.enums.SortMode.NONE)
    for extra in tip_ids[1:]:
        walker.push(extra)
    for hide in hidden:
        hide_id = _oid(repo, hide)
        if hide_id is not None:
            walker.hide(hide_id)
    count = 0
    for count, _ in enumerate(walker, start=1):
        if count >= MAX_WALK:
            break
    return count


def _walk_keys(repo: Any, tip: Any, hide: Any) -> list[tuple[str, CommitKey]]:
    """(oid, key) of commits in ``tip`` not in ``hide``, oldest first."""
    import pygit2

    walker = repo.walk(tip, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.REVERSE)
    if hide is not None:
        walker.hide(hide)
    found: list[tuple[str, CommitKey]] = []
    for commit in walker:
        author = commit.author
        key = CommitKey(author.name, author.email, author.time, author.offset, commit.message)
        found.append((str(commit.id), key))
        if len(found) >= MAX_WALK:
            break
    return found


def pair_commits(
    originals: Sequence[tuple[str, CommitKey]], rewritten: Sequence[tuple[str, CommitKey]]
) -> list[list[str]]:
    """Pair original commits with their rewritten copies by author, author date and message.

    Both sequences are oldest first. Each original pairs at most once (the
    earliest unmatched one with the same key); commits without a partner
    (dropped, squashed, reworded, or upstream commits) are left out.
    """
    pending: dict[CommitKey, list[str]] = {}
    for oid, key in originals:
        pending.setdefault(key, []).append(oid)
    pairs: list[list[str]] = []
    for new_oid, key in rewritten:
        candidates = pending.get(key)
        if candidates:
            old_oid = candidates.pop(0)
            if old_oid != new_oid:
                pairs.append([old_oid, new_oid])
    return pairs


def rewritten_pairs(repo: Any, orig_head: str, new_head: str) -> list[list[str]]:
    """``[[old, new], ...]`` for a rebase that moved a branch from ``orig_head`` to ``new_head``."""
    old_id, new_id = _oid(repo, orig_head), _oid(repo, new_head)
    if old_id is None or new_id is None or old_id == new_id:
        return []
    originals = _walk_keys(repo, old_id, new_id)
    rewritten = _walk_keys(repo, new_id, old_id)
    return pair_commits(originals, rewritten)


def merge_base(repo: Any, first: str, second: str) -> str | None:
    """The best common ancestor of two commits, if any."""
    first_id, second_id = _oid(repo, first), _oid(repo, second)
    if first_id is None or second_id is None:
        return None
    base = repo.merge_base(first_id, second_id)
    return str(base) if base is not None else None


def parent_of(repo: Any, commit: str) -> str | None:
    """The first parent of a commit, if it has one."""
    commit_id = _oid(repo, commit)
    if commit_id is None:
        return None
    parents = repo[commit_id].parent_ids
    return str(parents[0]) if parents else None


def path_in_commit(repo: Any, commit: str | None, path: str) -> bool | None:
    """True if ``path`` exists in a commit's tree; None if the commit is unknown."""
    commit_id = _oid(repo, commit)
    if commit_id is None:
        return None
    return path in repo[commit_id].tree


def classify_push(repo: Any, refs: list[dict[str, Any]], remote_tips: Sequence[str]) -> int:
    """Set ``forced`` on each pushed ref and return the number of commits the push sent.

    A ref update is forced when its old commit is not an ancestor of the new
    one, or when the old commit is not known locally at all: git only sends
    an update over a commit it cannot see when the push was forced. Commits
    counted: reachable from the new tips, not from the remote's tips before
    the push (``remote_tips``) nor from the old values.
    """
    for ref in refs:
        if ref["old"] and ref["new"]:
            ref["forced"] = is_fast_forward(repo, ref["old"], ref["new"]) is not True
    tips = [ref["new"] for ref in refs if ref["new"] and ref.get("status") != "rejected"]
    hidden = [*remote_tips, *(ref["old"] for ref in refs if ref["old"])]
    return count_commits(repo, tips, hidden)
