"""Git hook handlers: one small function per hook, turning argv + stdin into event facts.

Each handler gets a :class:`HookInput` (the hook's arguments, its stdin bytes,
the repository layout and HEAD, and the output of the git queries it asked
for up front) and returns a :class:`HookRecord` (operation, details, heads)
or None when this invocation has nothing to record. :func:`hook_event` turns
a record into the event dict the pipeline takes. The runner that reads
stdin, chains to the user's own hook and delivers the event is
:mod:`gitaudit.capture.hookrun`.

What each hook records (``details.hook`` names it; ``source`` is ``hook``):

- ``pre-push``: ``git.push`` with ``remote``, ``url`` (no credentials),
  ``refs`` [{ref, local_ref, old, new, created, deleted, forced}],
  ``commit_count`` and ``phase: pre-push`` (the push is being attempted).
- ``post-commit``: ``git.commit`` with ``commit``, ``parents``, ``files``
  [{path, status}], ``files_changed``, ``amend`` and ``reflog_action``.
- ``post-checkout``: ``git.checkout`` with ``from``, ``to``, ``kind``
  (``branch`` or ``files``) and ``branch``.
- ``post-merge``: ``git.merge`` with ``squash`` and ``fast_forward``.
- ``post-rewrite``: ``git.commit`` (amend) or ``git.rebase`` with
  ``rewritten_by`` and every ``[old, new]`` pair in ``rewritten``.
- ``pre-rebase``: ``git.rebase`` with ``upstream``, ``branch``, ``phase``.
- ``reference-transaction`` (opt-in): ``ref.update`` for committed
  transactions, with every ref's old and new value.
- ``pre-commit``, ``pre-merge-commit``, ``commit-msg`` (gates, see
  :data:`REFUSAL_HOOKS`): ``git.commit`` (``git.merge``) with ``phase``,
  ``outcome: failure``, only when the hook they chain to refused.

Stdlib only on the common path: pygit2 (~80 ms to import) is used only for
a push updating more refs than :data:`MAX_GIT_ANCESTRY_CHECKS`, where one
``git merge-base`` per ref would cost more.
"""

from __future__ import annotations

import os

from gitaudit import catalog
from gitaudit.capture import details, gitstate
from gitaudit.capture.record import repo_object, short_branch

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms to import; annotations are strings at runtime
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

    from gitaudit.capture.gitcmd import GitOutput

SOURCE = "hook"
DEFAULT_HOOKS = (
    "pre-push", "post-commit", "post-checkout", "post-merge", "post-rewrite", "pre-rebase",
    "prepare-commit-msg",
)  # fmt: skip
OPTIONAL_HOOKS = ("reference-transaction",)
# Hooks that look for a stopped or concluded conflict (a few stat calls when there is none);
# a new stop is only detected where HEAD is still where git stopped.
CONFLICT_HOOKS = frozenset(
    {"prepare-commit-msg", "post-commit", "post-checkout", "post-merge", "post-rewrite"}
)
DETECT_HOOKS = frozenset({"prepare-commit-msg", "post-checkout"})
STDIN_HOOKS = frozenset({"pre-push", "post-rewrite", "reference-transaction"})
# Hooks that only ever record a refusal: installed as gates (see hookinstall), they start
# Python only when the hook they chain to refused, to record the commit (or merge) it stopped.
REFUSAL_HOOKS = ("pre-commit", "pre-merge-commit", "commit-msg")
# Hooks whose non-zero exit stops the git command: a chained one failing means "refused".
GATING_HOOKS = frozenset({"pre-push", "pre-rebase", "reference-transaction", *REFUSAL_HOOKS})
MAX_GIT_ANCESTRY_CHECKS = 8  # more ref updates than this: one pygit2 walk instead
MAX_COUNT_ARGS = 4000  # more tips than this on a rev-list command line: pygit2 instead
MAX_FILES = 1000  # post-commit lists at most this many paths (files_changed counts all)
CONFIG_QUERY = ("config", "-z", "--get-regexp", r"^(user\.(name|email)|remote\..*\.url)$")
DIFF_TREE_QUERY = (
    "diff-tree", "-r", "-z", "--root", "--always", "--no-renames", "--name-status",
    "--diff-merges=first-parent", "--format=%H %P", "HEAD",
)  # fmt: skip
_REFLOG_TAIL_BYTES = 16384


class HookInput:
    """What a handler may look at: arguments, stdin, repository and query results."""

    __slots__ = ("args", "environ", "facts", "head", "layout", "name", "results", "stdin")

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        stdin: bytes,
        environ: Mapping[str, str],
        layout: gitstate.Layout | None,
        head: gitstate.Head,
    ) -> None:
        self.name = name
        self.args = list(args)
        self.stdin = stdin
        self.environ = environ
        self.layout = layout
        self.head = head
        self.results: dict[str, GitOutput | None] = {}
        self.facts: dict[str, Any] = {}

    def fact(self, key: str, read: Callable[[], Any]) -> Any:
        """A repository read git may change once the hook returns: done once, then remembered.

        A handler with ``facts`` (see :class:`Handler`) makes these reads
        before git goes on, so a build that runs later sees the same values.
        """
        if key not in self.facts:
            self.facts[key] = read()
        return self.facts[key]

    def arg(self, index: int) -> str | None:
        """The hook argument at ``index``, None if git passed fewer (or an empty one)."""
        return self.args[index] or None if index < len(self.args) else None

    def output(self, key: str) -> bytes | None:
        """stdout of the query ``key`` if it ran and succeeded."""
        result = self.results.get(key)
        return result.stdout if result is not None and result.returncode == 0 else None


class HookRecord:
    """What one hook invocation contributes to its event."""

    __slots__ = ("details", "head_after", "head_before", "operation")

    def __init__(self, operation: str, event_details: dict[str, Any],
                 head_before: str | None = None, head_after: str | None = None) -> None:
        self.operation = operation
        self.details = event_details
        self.head_before = head_before
        self.head_after = head_after


# --- pure parsers ------------------------------------------------------------------------


def null_oid(oid: str | None) -> str | None:
    """The oid, or None for git's all-zero "no object" id (or anything empty)."""
    if not oid or not oid.strip("0"):
        return None
    return oid


def _lines(data: bytes) -> list[list[str]]:
    return [line.split() for line in data.decode("utf-8", "surrogateescape").splitlines()
            if line.strip()]


def parse_push_lines(data: bytes) -> list[dict[str, Any]]:
    """pre-push stdin (``<local ref> <local sha> <remote ref> <remote sha>`` lines) to refs."""
    refs: list[dict[str, Any]] = []
    for words in _lines(data):
        if len(words) < 4:
            continue
        local_ref, local_sha, remote_ref, remote_sha = words[:4]
        old, new = null_oid(remote_sha), null_oid(local_sha)
        refs.append({
            "ref": remote_ref,
            "local_ref": None if local_ref == "(delete)" else local_ref,
            "old": old,
            "new": new,
            "created": old is None,
            "deleted": new is None,
            "forced": False,
        })
    return refs


def parse_rewrite_lines(data: bytes) -> list[list[str]]:
    """post-rewrite stdin (``<old> <new> [<extra>]`` lines) to ``[[old, new], ...]``."""
    return [[words[0], words[1]] for words in _lines(data) if len(words) >= 2]


def parse_transaction_lines(data: bytes) -> list[dict[str, Any]]:
    """reference-transaction stdin (``<old> <new> <ref>`` lines) to ref changes."""
    changes: list[dict[str, Any]] = []
    for words in _lines(data):
        if len(words) < 3:
            continue
        old, new = null_oid(words[0]), null_oid(words[1])
        changes.append({"ref": words[2], "old": old, "new": new,
                        "created": old is None, "deleted": new is None})
    return changes


def parse_diff_tree(data: bytes) -> tuple[str | None, list[str], list[dict[str, str]]]:
    """``git diff-tree -z --name-status --format='%H %P'`` output: (commit, parents, files)."""
    fields = data.decode("utf-8", "surrogateescape").split("\0")
    if not fields or not fields[0].strip():
        return None, [], []
    header = fields[0].split()
    files: list[dict[str, str]] = []
    rest = [field.lstrip("\n") for field in fields[1:]]
    for index in range(0, len(rest) - 1, 2):
        status, path = rest[index], rest[index + 1]
        if status:
            files.append({"path": path, "status": status})
    return header[0], header[1:], files


def parse_reflog_line(line: str) -> tuple[str, str, str] | None:
    """(old, new, message) of one reflog line, or None if it is not one."""
    head, tab, message = line.partition("\t")
    words = head.split(" ", 2)
    if not tab or len(words) < 3:
        return None
    return words[0], words[1], message.strip()


def reflog_action(message: str | None) -> str | None:
    """``commit (amend)`` from ``commit (amend): fix typo``; None without a message."""
    if not message:
        return None
    return message.split(":", 1)[0].strip() or None


def last_reflog(git_dir: str) -> tuple[str, str, str] | None:
    """The newest entry of this worktree's HEAD reflog (read from the file's end)."""
    try:
        with open(os.path.join(git_dir, "logs", "HEAD"), "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - _REFLOG_TAIL_BYTES))
            tail = handle.read()
    except OSError:
        return None
    lines = tail.decode("utf-8", "surrogateescape").rstrip("\n").rsplit("\n", 1)
    return parse_reflog_line(lines[-1]) if lines and lines[-1] else None


def _reflog_for(inp: HookInput, oid: str | None) -> str | None:
    """The HEAD reflog message of the update that produced ``oid`` (None if not the newest)."""
    layout = inp.layout
    if layout is None or oid is None:
        return None
    entry = inp.fact("reflog", lambda: last_reflog(layout.git_dir))
    return entry[2] if entry is not None and entry[1] == oid else None


# --- config, read from files ------------------------------------------------------------


def config_files(layout: gitstate.Layout, environ: Mapping[str, str]) -> list[str]:
    """The config files git reads for this repository, lowest precedence first."""
    files = gitstate.user_config_files(environ)
    files.append(os.path.join(layout.common_dir, "config"))
    files.append(os.path.join(layout.git_dir, "config.worktree"))
    return files


def _config_value(raw: str) -> str | None:
    """A config value without quotes or a trailing comment; None if it needs git's parser."""
    if "\\" in raw:
        return None
    out: list[str] = []
    quoted = False
    for char in raw:
        if char == '"':
            quoted = not quoted
        elif char in "#;" and not quoted:
            break
        else:
            out.append(char)
    return None if quoted else "".join(out).strip()


def parse_config_text(text: str, found: dict[str, str]) -> bool:
    """Add ``user.name``, ``user.email`` and ``remote.*.url`` from one config file's text.

    Returns False when the file uses what this small reader does not follow
    (includes, continuation lines): the caller then asks git instead.
    """
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            header = line[1:].split("]", 1)[0].strip()
            name, _, sub = header.partition(" ")
            section = name.lower() + ("." + sub.strip().strip('"') if sub else "")
            if name.lower() in {"include", "includeif"} or "]" not in line:
                return False
            continue
        key, eq, raw_value = line.partition("=")
        full = f"{section}.{key.strip().lower()}"
        if full in {"user.name", "user.email"} or (
            full.startswith("remote.") and full.endswith(".url")
        ):
            value = _config_value(raw_value) if eq else None
            if value is None:
                return False
            found[full] = value
    return True


def read_config_params(layout: gitstate.Layout, environ: Mapping[str, str]
                       ) -> dict[str, str] | None:
    """Identity and remote URLs from the config files (None: ask git, see CONFIG_QUERY)."""
    if environ.get("GIT_CONFIG_PARAMETERS") or environ.get("GIT_CONFIG_COUNT"):
        return None
    found: dict[str, str] = {}
    for path in config_files(layout, environ):
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as handle:
                text = handle.read()
        except OSError:
            continue
        if not parse_config_text(text, found):
            return None
    return found


# --- pre-push ----------------------------------------------------------------------------


def _tracking(inp: HookInput) -> dict[str, str]:
    """The remote-tracking refs of the remote before the push (a fact)."""
    found: dict[str, str] = inp.fact("remote_tracking", lambda: _read_tracking(inp))
    return found


def _remote_tips(inp: HookInput) -> list[str]:
    """The remote's tips before the push, as far as remote-tracking refs know them."""
    return sorted(set(_tracking(inp).values()))


def _read_tracking(inp: HookInput) -> dict[str, str]:
    remote = inp.arg(0)
    if inp.layout is None or not remote or "/" in remote or ":" in remote:
        return {}
    try:
        return gitstate.RefReader(inp.layout).refs(f"refs/remotes/{remote}/")
    except (gitstate.UnusualLayout, OSError):
        return {}


def _git_parent() -> int | None:
    """The pid of the git that runs this hook, if this hook's parent is git itself."""
    parent = os.getppid()
    try:
        with open(f"/proc/{parent}/comm", "rb") as handle:
            return parent if handle.read().strip() == b"git" else None
    except OSError:
        return None


def push_verdicts(inp: HookInput, refs: list[dict[str, Any]]) -> int:
    """Once the pushing git has exited: whether the remote took each ref (``accepted``).

    The remote's answer reaches no hook; what it accepted shows in the remote-tracking
    refs git updates afterwards (``refs/remotes/<remote>/<branch>`` for a pushed branch of
    a named remote). For a ref without a remote-tracking ref, ``accepted`` is None. The
    number of refs the remote refused.
    """
    remote, before, after = inp.arg(0), _tracking(inp), _read_tracking(inp)
    refused = 0
    for ref in refs:
        if not ref["ref"].startswith("refs/heads/"):
            continue
        tracking = f"refs/remotes/{remote}/{ref['ref'][len('refs/heads/'):]}"
        now, was = after.get(tracking), before.get(tracking)
        if ref["new"] is None:
            accepted = None if was is None else now is None
        elif now == ref["new"]:
            accepted = True
        else:
            accepted = None if now is None and was is None else False
        ref["accepted"] = accepted
        refused += accepted is False
    return refused


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, not ours to signal
    return True


def settle_push(inp: HookInput, event: dict[str, Any]) -> None:
    """A pre-push event once git has exited (a detached delivery, see :mod:`.hookrun`): each
    ref's ``accepted``; ``outcome: failure`` if the remote refused any.

    Inline (git waits for the hook) nothing can be known yet: ``accepted`` is left out.
    """
    if inp.name != "pre-push" or event.get("operation") != "git.push":
        return
    pid = inp.facts.get("git_pid")
    if not pid or _running(pid):
        return  # no git to wait for, or it is still running: nothing known yet
    refs = event["details"].get("refs") or []
    rejected = push_verdicts(inp, refs)
    if rejected and event["outcome"] == "success":
        event["outcome"] = "failure"
        event["result"] = {"exit_code": 1, "error": f"the remote refused {rejected} of "
                           f"{len(refs)} ref(s) (remote-tracking refs not updated)"}
        event["severity"] = catalog.severity_for(event["operation"], event["details"], "failure")


def _push_updates(refs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [ref for ref in refs if ref["old"] and ref["new"] and ref["old"] != ref["new"]]


def _count_args(refs: Sequence[dict[str, Any]], tips: Sequence[str]) -> list[str] | None:
    news = [ref["new"] for ref in refs if ref["new"]]
    if not news:
        return None
    hidden = [ref["old"] for ref in refs if ref["old"]] + list(tips)
    return ["rev-list", "--count", "--ignore-missing", *news, "--not", *hidden]


def _uses_pygit2(refs: Sequence[dict[str, Any]], tips: Sequence[str]) -> bool:
    return (len(_push_updates(refs)) > MAX_GIT_ANCESTRY_CHECKS
            or len(refs) + len(tips) > MAX_COUNT_ARGS)


def pre_push_queries(inp: HookInput) -> dict[str, list[str]]:
    """One ``merge-base --is-ancestor`` per updated ref, one ``rev-list --count``."""
    refs = parse_push_lines(inp.stdin)
    tips = _remote_tips(inp)
    if _uses_pygit2(refs, tips):
        return {}
    queries = {
        f"ancestor:{ref['ref']}": ["merge-base", "--is-ancestor", ref["old"], ref["new"]]
        for ref in _push_updates(refs)
    }
    count = _count_args(refs, tips)
    if count is not None:
        queries["count"] = count
    return queries


def _classify_with_git(inp: HookInput, refs: list[dict[str, Any]]) -> int | None:
    for ref in _push_updates(refs):
        result = inp.results.get(f"ancestor:{ref['ref']}")
        # 1: not an ancestor; 128: old is unknown here, which git only pushes over when forced
        ref["forced"] = result is not None and result.returncode != 0
    counted = inp.output("count")
    try:
        return int(counted.decode().strip()) if counted is not None else None
    except ValueError:
        return None


def _site_packages() -> None:
    """Hooks start Python with -S; pygit2 lives in site-packages: add them when needed."""
    from gitaudit.capture.history import ensure_site_packages

    ensure_site_packages()


def _classify_with_pygit2(inp: HookInput, refs: list[dict[str, Any]], tips: list[str]) -> int:
    _site_packages()
    from gitaudit.capture import history

    if inp.layout is None:
        return 0
    return history.classify_push(history.open_repository(inp.layout.git_dir), refs, tips)


def pre_push(inp: HookInput) -> HookRecord:
    """``pre-push <remote> <url>``; stdin lists the ref updates about to be sent."""
    refs = parse_push_lines(inp.stdin)
    tips = _remote_tips(inp)
    if _uses_pygit2(refs, tips):
        count: int | None = _classify_with_pygit2(inp, refs, tips)
    else:
        count = _classify_with_git(inp, refs)
    remote, url = inp.arg(0), inp.arg(1)
    return HookRecord("git.push", {
        "phase": "pre-push",
        "remote": details.strip_credentials(remote) if remote else None,
        "url": details.strip_credentials(url) if url else None,
        "refs": refs,
        "commit_count": count,
    }, inp.head.oid, inp.head.oid)


# --- commit, checkout, merge, rewrite, rebase --------------------------------------------


def post_commit_queries(inp: HookInput) -> dict[str, list[str]]:
    """The new commit's parents and changed files, in one ``git diff-tree`` (of HEAD's oid)."""
    return {"diff-tree": [*DIFF_TREE_QUERY[:-1], inp.head.oid or "HEAD"]}


def post_commit_facts(inp: HookInput) -> None:
    """What ``post_commit`` reads that git may change: the newest HEAD reflog entry."""
    _reflog_for(inp, inp.head.oid)


def pre_push_facts(inp: HookInput) -> None:
    """What ``pre_push`` reads that git may change: the remote-tracking refs; and the pid of
    the git that pushes (a detached build waits for it, then reads what the remote took)."""
    _tracking(inp)
    inp.fact("git_pid", _git_parent)


def post_commit(inp: HookInput) -> HookRecord:
    """``post-commit`` (no arguments): the commit HEAD now points at."""
    commit, parents, files = parse_diff_tree(inp.output("diff-tree") or b"")
    commit = commit or inp.head.oid
    message = _reflog_for(inp, commit)
    action = reflog_action(message)
    return HookRecord("git.commit", {
        "commit": commit,
        "parents": parents,
        "files": files[:MAX_FILES],
        "files_changed": len(files),
        "amend": None if action is None else action == "commit (amend)",
        "merge": len(parents) > 1,
        "reflog_action": action,
    }, parents[0] if parents else None, commit)


def post_checkout(inp: HookInput) -> HookRecord:
    """``post-checkout <previous HEAD> <new HEAD> <1: branch checkout | 0: files>``."""
    previous, new = null_oid(inp.arg(0)), null_oid(inp.arg(1))
    branch_checkout = inp.arg(2) == "1"
    return HookRecord("git.checkout", {
        "from": previous,
        "to": new,
        "kind": "branch" if branch_checkout else "files",
        "branch_checkout": branch_checkout,
        "initial": branch_checkout and previous is None,
        "branch": details_branch(inp.head),
        "detached": inp.head.ref is None,
    }, previous, new)


def details_branch(head: gitstate.Head) -> str | None:
    """The short branch name HEAD is on (None when detached)."""
    return short_branch(head.ref)


def _orig_head(inp: HookInput) -> str | None:
    if inp.layout is None:
        return None
    try:
        return gitstate.RefReader(inp.layout).oid("ORIG_HEAD")
    except (gitstate.UnusualLayout, OSError):
        return None


def post_merge(inp: HookInput) -> HookRecord:
    """``post-merge <1 if squash>``: after a merge (or pull) that changed the worktree."""
    squash = inp.arg(0) == "1"
    message = None if squash else _reflog_for(inp, inp.head.oid)
    fast_forward = None if message is None else "fast-forward" in message.lower()
    before = None if squash else _orig_head(inp)
    return HookRecord("git.merge", {
        "squash": squash,
        "fast_forward": False if squash else fast_forward,
        "orig_head": before,
        "reflog_action": reflog_action(message),
    }, before, inp.head.oid)


def post_rewrite(inp: HookInput) -> HookRecord:
    """``post-rewrite <amend|rebase>``; stdin pairs each rewritten commit with its copy."""
    command = inp.arg(0) or "rebase"
    pairs = parse_rewrite_lines(inp.stdin)
    operation = "git.commit" if command == "amend" else "git.rebase"
    return HookRecord(operation, {
        "rewritten_by": command,
        "rewritten": pairs,
        "amend": command == "amend",
    }, pairs[-1][0] if pairs else None, pairs[-1][1] if pairs else None)


def pre_rebase(inp: HookInput) -> HookRecord:
    """``pre-rebase <upstream> [<branch>]`` (no branch: the current one)."""
    branch = inp.arg(1) or details_branch(inp.head)
    return HookRecord("git.rebase", {
        "phase": "pre-rebase",
        "upstream": inp.arg(0),
        "branch": branch,
    }, inp.head.oid, inp.head.oid)


def reference_transaction(inp: HookInput) -> HookRecord | None:
    """``reference-transaction <prepared|committed|aborted>``: records committed ones."""
    state = inp.arg(0)
    changes = parse_transaction_lines(inp.stdin)
    if state != "committed" or not changes:
        return None
    record: dict[str, Any] = {"state": state, "refs": changes}
    if len(changes) == 1:
        record.update(changes[0])
    return HookRecord("ref.update", record, inp.head.oid, inp.head.oid)


class Handler:
    """A hook's handler and the git queries it wants started before it runs.

    ``facts``, if given, reads (through :meth:`HookInput.fact`) everything
    ``build`` reads from the repository that git may change once the hook
    returns (HEAD is read for every handler; queries name objects, not refs).
    Such a handler may be built in a detached process after git went on
    (setting ``hook_detach``); one without is built before the hook returns.
    """

    __slots__ = ("build", "facts", "queries")

    def __init__(self, build: Callable[[HookInput], HookRecord | None],
                 queries: Callable[[HookInput], dict[str, list[str]]] | None = None,
                 facts: Callable[[HookInput], None] | None = None) -> None:
        self.build = build
        self.queries = queries
        self.facts = facts


def prepare_commit_msg(inp: HookInput) -> HookRecord | None:
    """``prepare-commit-msg``: no event of its own (post-commit records the commit).

    It runs while a stopped merge, cherry-pick, revert or rebase step is being
    concluded (the hook script starts Python for it only then), which is
    where :func:`conflict_events` catches a conflict plain git stopped on.
    """
    del inp
    return None


def commit_refused(inp: HookInput) -> HookRecord:
    """``pre-commit``, ``pre-merge-commit``, ``commit-msg``: the commit their chained hook
    refused (they run only then): ``git.commit`` (``git.merge`` for ``pre-merge-commit``)."""
    operation = "git.merge" if inp.name == "pre-merge-commit" else "git.commit"
    return HookRecord(operation, {"phase": inp.name}, head_before=inp.head.oid)


HANDLERS: dict[str, Handler] = {
    **{name: Handler(commit_refused) for name in REFUSAL_HOOKS},
    "prepare-commit-msg": Handler(prepare_commit_msg),
    "pre-push": Handler(pre_push, pre_push_queries, pre_push_facts),
    "post-commit": Handler(post_commit, post_commit_queries, post_commit_facts),
    "post-checkout": Handler(post_checkout),
    "post-merge": Handler(post_merge),
    "post-rewrite": Handler(post_rewrite),
    "pre-rebase": Handler(pre_rebase),
    "reference-transaction": Handler(reference_transaction),
}


# --- conflicts ---------------------------------------------------------------------------


def conflict_pending(inp: HookInput) -> bool:
    """Whether :func:`conflict_events` has anything to look at: git is stopped on a conflict
    that has not ended, or a conflict state is saved (a few ``stat`` calls; a fact, so a
    detached build sees the same answer)."""
    layout = inp.layout
    if layout is None or inp.name not in CONFLICT_HOOKS:
        return False

    def look() -> bool:
        if os.path.exists(gitstate.conflict_state_path(layout)):
            return True
        return gitstate.current_stop(layout) is not None and (
            gitstate.current_stop(layout, gitstate.ended_stops(layout)) is not None)

    pending: bool = inp.fact("conflict_pending", look)
    return pending


def conflict_events(inp: HookInput, *, source_event: dict[str, Any] | None,
                    actor: dict[str, Any], params: Mapping[str, str], correlation_id: str,
                    parent_id: str | None) -> list[dict[str, Any]]:
    """``conflict.*`` events this hook invocation sees (usually none, after a few stats).

    A saved conflict (saved by the wrapper, the daemon does not share it, or
    by an earlier hook) is followed up: a commit that concluded it records
    ``conflict.resolved`` (and the state is cleared, so nothing else records
    it again); a stop that is gone without one records ``conflict.aborted``
    (late: at the first hook after the abort). A stop nobody saw happen is
    replayed in memory and recorded late as ``conflict.detected``, its time
    the moment git stopped.
    """
    layout = inp.layout
    if layout is None or not conflict_pending(inp):
        return []
    path = gitstate.conflict_state_path(layout)
    _site_packages()
    from gitaudit.capture import conflicts, history

    previous = gitstate.load_conflict_state(path)
    if previous is None:
        gitstate.clear_conflict_state(path)  # missing or unreadable: start afresh
    repo = history.open_repository(layout.git_dir)
    head = inp.head.oid

    def detect(stop: tuple[str, str, int]) -> list[dict[str, Any]]:
        return conflicts.replay(repo, stop[0], head, stop[1])

    finish = inp.name == "post-rewrite" and inp.arg(0) == "rebase"
    verdict, stopped = conflicts.observe(
        repo, layout, previous, head=head, action="finish" if finish else None,
        rewritten=dict(parse_rewrite_lines(inp.stdin)) if finish else None,
        detect=detect if inp.name in DETECT_HOOKS else None, ended=gitstate.ended_stops(layout),
    )
    where = repo_object(os.path.realpath(layout.worktree or layout.git_dir), params,
                        branch=inp.head.ref, head_after=head)
    found: list[dict[str, Any]] = []
    if verdict is not None and previous is not None:
        concluded_by = source_event["operation"] if source_event else "git.commit"
        extra = {"hook": inp.name}
        if verdict[0] == "resolved" and inp.environ.get("GIT_REFLOG_ACTION", "").endswith(
            "(continue)"
        ):  # git names the command it runs hooks for: `rebase (continue)`
            concluded_by, extra["action"] = "git.rebase", "continue"
        operation, details_ = conflicts.concluded_details(
            repo, previous, verdict, concluded_by, **extra,
        )
        found.append(conflicts.lifecycle_event(
            operation, details_, source=SOURCE, state=previous, actor=actor, repo=where,
            exit_code=0,
        ))
        gitstate.end_conflict_state(path, previous)
    if stopped is not None:
        stop, files = stopped
        state = conflicts.new_state(
            detected_id=conflicts.conflict_id(layout, stop), correlation_id=correlation_id,
            operation=catalog.operation_for(stop[0]), stop=stop, stopped_in=stop[0], head=head,
            files=files,
        )
        found.append(conflicts.lifecycle_event(
            "conflict.detected", conflicts.detected_details(state, hook=inp.name, late=True),
            source=SOURCE, state=state, actor=actor, repo=where, exit_code=None,
            event_id=state["detected_id"], parent_id=parent_id,
            occurred_at=state["detected_at"],
        ))
        gitstate.save_conflict_state(layout, state)
    return found


# --- the event ---------------------------------------------------------------------------


def refused(name: str, chained_status: int | None) -> bool:
    """True when the user's own gating hook said no, so git will not go ahead."""
    return name in GATING_HOOKS and chained_status not in (None, 0)


def hook_event(
    inp: HookInput,
    record: HookRecord,
    *,
    event_id: str,
    correlation_id: str,
    parent_id: str | None,
    actor: dict[str, Any],
    params: Mapping[str, str],
    chained: tuple[str, int] | None,
) -> dict[str, Any]:
    """The event dict of one hook invocation (``chained``: the user's hook and its status)."""
    event_details = {"hook": inp.name, **record.details}
    sid = inp.environ.get("GIT_TRACE2_PARENT_SID")
    if sid:  # git traces itself: the session id of the git that runs this hook
        event_details["trace2_sid"] = sid
    status = chained[1] if chained is not None else None
    if chained is not None:
        event_details["chained_hook"] = {"path": chained[0], "exit_code": chained[1]}
    outcome = "failure" if refused(inp.name, status) else "success"
    error = f"refused by the {inp.name} hook (exit code {status})" if outcome == "failure" else None
    return {
        "id": event_id,
        "schema_version": catalog.SCHEMA_VERSION,
        "occurred_at": catalog.now_rfc3339(),
        "duration_ms": None,
        "operation": record.operation,
        "category": catalog.category_for(record.operation, event_details),
        "outcome": outcome,
        "severity": catalog.severity_for(record.operation, event_details, outcome),
        "source": SOURCE,
        "correlation_id": correlation_id,
        "parent_id": parent_id,
        "actor": actor,
        "repo": repo_info(inp, record, params),
        "result": {"exit_code": status if outcome == "failure" else 0, "error": error},
        "details": event_details,
    }


def repo_info(
    inp: HookInput, facts: HookRecord, params: Mapping[str, str]
) -> dict[str, Any] | None:
    """The event's ``repo`` object (path, remote without credentials, branch, heads)."""
    layout = inp.layout
    if layout is None:
        return None
    return repo_object(
        os.path.realpath(layout.worktree or layout.git_dir),
        params,
        branch=inp.head.ref,
        head_before=facts.head_before,
        head_after=facts.head_after,
    )
