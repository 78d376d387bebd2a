"""Pure functions: a git command line to the facts an audit record needs.

:func:`parse_invocation` splits ``git [global options] <subcommand> [args]``
the way git does; :func:`request_details` turns a subcommand's arguments into
the ``details`` of its event (what was asked for: remote, refspecs, mode,
target...). What actually happened (refs pushed, commits rewritten,
conflicts) is added later by the wrapper from repository state.

Also here, because several capture paths need them: :func:`strip_credentials`
(remote URLs without passwords or tokens) and :func:`repo_name`.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms to import; annotations are strings at runtime
    from collections.abc import Callable, Sequence
    from typing import Any

# Global options of git that take a value in the next argument (or after '=').
_GLOBAL_VALUED = frozenset(
    {"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--super-prefix", "--config-env",
     "--attr-source", "--list-cmds"}
)
_GLOBAL_SUBCOMMAND_FLAGS = {"--version": "version", "-v": "version", "--help": "help", "-h": "help"}
_INFO_FLAGS = frozenset({"--html-path", "--man-path", "--info-path"})


class Invocation:
    """A parsed ``git`` command line."""

    __slots__ = ("args", "argv", "bare", "chdirs", "config", "git_dir", "subcommand", "work_tree")

    def __init__(self, *, argv: list[str], subcommand: str | None, args: list[str],
                 chdirs: list[str], git_dir: str | None, work_tree: str | None,
                 config: list[str], bare: bool) -> None:
        self.argv = argv
        self.subcommand = subcommand
        self.args = args
        self.chdirs = chdirs
        self.git_dir = git_dir
        self.work_tree = work_tree
        self.config = config
        self.bare = bare

    def with_command(self, subcommand: str | None, args: list[str]) -> Invocation:
        """A copy naming another subcommand and arguments (global options kept)."""
        return Invocation(argv=self.argv, subcommand=subcommand, args=args, chdirs=self.chdirs,
                          git_dir=self.git_dir, work_tree=self.work_tree, config=self.config,
                          bare=self.bare)


def parse_invocation(argv: Sequence[str]) -> Invocation:
    """Split git's global options from the subcommand and its arguments."""
    chdirs: list[str] = []
    config: list[str] = []
    found: dict[str, str] = {}
    bare = False
    subcommand: str | None = None
    args: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg == "-":
            subcommand, args = arg, list(argv[i + 1 :])
            break
        if arg in _GLOBAL_SUBCOMMAND_FLAGS:
            subcommand, args = _GLOBAL_SUBCOMMAND_FLAGS[arg], list(argv[i + 1 :])
            break
        name, eq, value = arg.partition("=")
        if not eq and name in _GLOBAL_VALUED:
            if i + 1 >= len(argv):
                break
            value = argv[i + 1]
            i += 1
        if name == "-C":
            chdirs.append(value)
        elif name == "-c":
            config.append(value)
        elif name == "--bare":
            bare = True
        elif name in _GLOBAL_VALUED or name == "--exec-path":
            found[name] = value
        elif name in _INFO_FLAGS or (name == "--exec-path" and not eq):
            break
        i += 1
    return Invocation(argv=list(argv), subcommand=subcommand, args=args, chdirs=chdirs,
                      git_dir=found.get("--git-dir"), work_tree=found.get("--work-tree"),
                      config=config, bare=bare)


class Options:
    """A subcommand's arguments split into options, positionals and pathspecs after ``--``."""

    __slots__ = ("opts", "pathspecs", "positionals")

    def __init__(self, opts: list[tuple[str, str | None]], positionals: list[str],
                 pathspecs: list[str] | None) -> None:
        self.opts = opts
        self.positionals = positionals
        self.pathspecs = pathspecs

    def has(self, *names: str) -> bool:
        """True if any of the options was given."""
        return any(name in names for name, _ in self.opts)

    def value(self, *names: str) -> str | None:
        """The last value given to any of the options."""
        found = None
        for name, value in self.opts:
            if name in names:
                found = value
        return found

    def last_of(self, *names: str) -> str | None:
        """Which of the options was given last (e.g. ``--soft`` vs ``--hard``)."""
        found = None
        for name, _ in self.opts:
            if name in names:
                found = name
        return found


def split_options(args: Sequence[str], valued: frozenset[str] = frozenset()) -> Options:
    """Split arguments git-style: ``--opt=v``, ``--opt v`` / ``-o v`` / ``-ov`` for valued ones."""
    opts: list[tuple[str, str | None]] = []
    positionals: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return Options(opts, positionals, list(args[i + 1 :]))
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if eq:
                opts.append((name, value))
            elif name in valued and i + 1 < len(args):
                opts.append((name, args[i + 1]))
                i += 1
            else:
                opts.append((name, None))
        elif arg.startswith("-") and len(arg) > 1:
            i += _split_short(arg, args[i + 1] if i + 1 < len(args) else None, valued, opts)
        else:
            positionals.append(arg)
        i += 1
    return Options(opts, positionals, None)


def _split_short(
    arg: str, following: str | None, valued: frozenset[str], opts: list[tuple[str, str | None]]
) -> int:
    """Expand a short-option cluster into ``opts``; returns 1 if it consumed ``following``."""
    for pos in range(1, len(arg)):
        flag = "-" + arg[pos]
        if flag in valued:
            rest = arg[pos + 1 :]
            if rest:
                opts.append((flag, rest))
                return 0
            opts.append((flag, following))
            return 0 if following is None else 1
        opts.append((flag, None))
    return 0


def _int_or_none(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def strip_credentials(url: str) -> str:
    """A remote URL without secrets.

    ``https://user:token@host/x`` -> ``https://host/x`` (for http(s) and ftp(s)
    the whole userinfo goes: a bare token is often passed as the user name);
    ``ssh://git:pw@host/x`` -> ``ssh://git@host/x``; scp-like ``git@host:x`` and
    local paths are kept.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not at:
        return url
    if scheme.lower().split("+")[-1] in {"http", "https", "ftp", "ftps"}:
        kept = ""
    else:
        user = userinfo.split(":", 1)[0]
        kept = f"{user}@" if user else ""
    return f"{scheme}://{kept}{host}{slash}{path}"


def repo_name(remote: str | None, worktree: str | None) -> str | None:
    """Short repository name: last path component of the remote, else of the worktree."""
    for candidate in (remote, worktree):
        if not candidate:
            continue
        text = candidate.rstrip("/")
        if text.endswith("/.git"):
            text = text[: -len("/.git")]
        tail = text.replace(":", "/").rsplit("/", 1)[-1]
        if tail.endswith(".git"):
            tail = tail[: -len(".git")]
        if tail:
            return tail
    return None


def clone_target(url: str, bare: bool) -> str:
    """The directory ``git clone URL`` creates when none is given (git's guess_dir_name)."""
    text = url.rstrip("/")
    if text.endswith("/.git"):
        text = text[: -len("/.git")]
    text = text.rstrip("/")
    tail = text.replace(":", "/").rsplit("/", 1)[-1] or text
    if tail.endswith(".bundle"):
        tail = tail[: -len(".bundle")]
    if tail.endswith(".git"):
        tail = tail[: -len(".git")]
    return tail + ".git" if bare else tail


# --- per-subcommand builders ----------------------------------------------------------

_CLONE_VALUED = frozenset(
    {"-o", "--origin", "-b", "--branch", "-u", "--upload-pack", "--reference",
     "--reference-if-able", "--separate-git-dir", "--depth", "--shallow-since",
     "--shallow-exclude", "-c", "--config", "--template", "-j", "--jobs", "--filter",
     "--server-option", "--bundle-uri", "--ref-format"}
)
_FETCH_VALUED = frozenset(
    {"--depth", "--deepen", "--shallow-since", "--shallow-exclude", "-j", "--jobs",
     "--upload-pack", "--refmap", "-o", "--server-option", "--negotiation-tip", "--filter",
     "--submodule-prefix", "--recurse-submodules-default"}
)
_PULL_VALUED = _FETCH_VALUED | frozenset(
    {"-s", "--strategy", "-X", "--strategy-option", "--cleanup"}
)
_PUSH_VALUED = frozenset(
    {"--repo", "--receive-pack", "--exec", "-o", "--push-option", "--recurse-submodules"}
)
_REBASE_VALUED = frozenset(
    {"--onto", "-s", "--strategy", "-X", "--strategy-option", "-x", "--exec", "--whitespace",
     "-C", "--empty"}
)
MERGE_VALUED = frozenset(
    {"-m", "--message", "-F", "--file", "-s", "--strategy", "-X", "--strategy-option",
     "--cleanup", "--into-name"}
)
COMMIT_VALUED = frozenset(
    {"-m", "--message", "-F", "--file", "-C", "--reuse-message", "-c", "--reedit-message",
     "--fixup", "--squash", "--author", "--date", "-t", "--template", "--cleanup",
     "--pathspec-from-file", "--trailer"}
)
_CHECKOUT_VALUED = frozenset(
    {"-b", "-B", "--orphan", "--conflict", "--pathspec-from-file", "-c", "-C", "--create",
     "--force-create"}
)
_RESET_VALUED = frozenset({"--pathspec-from-file"})
_CHERRY_PICK_VALUED = frozenset(
    {"-m", "--mainline", "--strategy", "-X", "--strategy-option", "--cleanup"}
)
TAG_VALUED = frozenset(
    {"-m", "--message", "-F", "--file", "-u", "--local-user", "--cleanup", "--sort",
     "--format"}
)
_BRANCH_VALUED = frozenset({"-u", "--set-upstream-to", "--sort", "--format", "--points-at"})

_SEQUENCER_ACTIONS = ("--continue", "--abort", "--skip", "--quit", "--edit-todo",
                      "--show-current-patch")


def _action(opts: Options, default: str) -> str:
    given = opts.last_of(*_SEQUENCER_ACTIONS)
    return given[2:] if given else default


def clone_request(args: Sequence[str]) -> dict[str, Any]:
    """``git clone [options] <url> [<dir>]``."""
    opts = split_options(args, _CLONE_VALUED)
    positionals = opts.positionals + (opts.pathspecs or [])
    url = positionals[0] if positionals else None
    bare = opts.has("--bare", "--mirror")
    target = positionals[1] if len(positionals) > 1 else None
    if target is None and url is not None:
        target = clone_target(url, bare)
    return {
        "url": strip_credentials(url) if url else None,
        "branch": opts.value("-b", "--branch"),
        "depth": _int_or_none(opts.value("--depth")),
        "target": target,
        "origin": opts.value("-o", "--origin"),
        "bare": bare,
        "mirror": opts.has("--mirror"),
        "recurse_submodules": opts.has("--recurse-submodules", "--recursive"),
        "single_branch": opts.has("--single-branch"),
    }


def fetch_request(args: Sequence[str]) -> dict[str, Any]:
    """``git fetch [options] [<repository> [<refspec>...]]``."""
    opts = split_options(args, _FETCH_VALUED)
    all_remotes = opts.has("--all")
    remote = None if all_remotes or not opts.positionals else opts.positionals[0]
    return {
        "remote": strip_credentials(remote) if remote else None,
        "refspecs": opts.positionals[1:],
        "all": all_remotes,
        "prune": opts.has("-p", "--prune"),
        "tags": opts.has("-t", "--tags"),
        "depth": _int_or_none(opts.value("--depth")),
        "dry_run": opts.has("--dry-run"),
    }


def pull_request(args: Sequence[str]) -> dict[str, Any]:
    """``git pull [options] [<repository> [<refspec>...]]``."""
    opts = split_options(args, _PULL_VALUED)
    rebase_opt = opts.last_of("-r", "--rebase", "--no-rebase")
    rebase: bool | str | None = None
    if rebase_opt == "--no-rebase":
        rebase = False
    elif rebase_opt is not None:
        value = opts.value("--rebase")
        rebase = value if value and value not in {"true", "yes"} else True
    remote = opts.positionals[0] if opts.positionals else None
    return {
        "remote": strip_credentials(remote) if remote else None,
        "refspecs": opts.positionals[1:],
        "rebase": rebase,
        "ff_only": opts.has("--ff-only"),
        "strategy": opts.value("-s", "--strategy"),
    }


def push_request(args: Sequence[str]) -> dict[str, Any]:
    """``git push [options] [<repository> [<refspec>...]]``."""
    opts = split_options(args, _PUSH_VALUED)
    remote = opts.value("--repo") or (opts.positionals[0] if opts.positionals else None)
    refspecs = opts.positionals[1:] if opts.positionals else []
    return {
        "remote": strip_credentials(remote) if remote else None,
        "refspecs": refspecs,
        "force": opts.has("-f", "--force") or any(spec.startswith("+") for spec in refspecs),
        "force_with_lease": opts.has("--force-with-lease", "--force-if-includes"),
        "delete": opts.has("-d", "--delete") or any(spec.startswith(":") for spec in refspecs),
        "tags": opts.has("--tags"),
        "all": opts.has("--all", "--branches"),
        "mirror": opts.has("--mirror"),
        "dry_run": opts.has("-n", "--dry-run"),
        "set_upstream": opts.has("-u", "--set-upstream"),
        "atomic": opts.has("--atomic"),
    }


def rebase_request(args: Sequence[str]) -> dict[str, Any]:
    """``git rebase [--onto <newbase>] [<upstream> [<branch>]]`` and its sequencer actions."""
    opts = split_options(args, _REBASE_VALUED)
    positionals = opts.positionals
    return {
        "action": _action(opts, "start"),
        "upstream": positionals[0] if positionals else None,
        "onto_name": opts.value("--onto"),
        "branch": positionals[1] if len(positionals) > 1 else None,
        "interactive": opts.has("-i", "--interactive"),
        "root": opts.has("--root"),
        "autosquash": opts.has("--autosquash"),
    }


def merge_request(args: Sequence[str]) -> dict[str, Any]:
    """``git merge [options] [<commit>...]`` and ``--continue``/``--abort``."""
    opts = split_options(args, MERGE_VALUED)
    ff = opts.last_of("--ff", "--no-ff", "--ff-only")
    return {
        "action": _action(opts, "merge"),
        "commits": opts.positionals,
        "strategy": opts.value("-s", "--strategy"),
        "ff": {"--ff": "allowed", "--no-ff": "never", "--ff-only": "only"}.get(ff or ""),
        "squash": opts.has("--squash"),
        "no_commit": opts.has("--no-commit"),
    }


def commit_request(args: Sequence[str]) -> dict[str, Any]:
    """``git commit [options] [--] [<pathspec>...]`` (never the message itself)."""
    opts = split_options(args, COMMIT_VALUED)
    return {
        "amend": opts.has("--amend"),
        "all": opts.has("-a", "--all"),
        "allow_empty": opts.has("--allow-empty"),
        "no_verify": opts.has("-n", "--no-verify"),
        "fixup": opts.value("--fixup"),
        "squash": opts.value("--squash"),
        "signoff": opts.has("-s", "--signoff"),
        "pathspecs": opts.positionals + (opts.pathspecs or []),
    }


def checkout_request(args: Sequence[str], switch: bool = False) -> dict[str, Any]:
    """``git checkout`` / ``git switch``: branch switch, branch creation or path restore."""
    opts = split_options(args, _CHECKOUT_VALUED)
    create_flags = ("-c", "-C", "--create", "--force-create") if switch else ("-b", "-B")
    created = opts.value(*create_flags, "--orphan")
    positionals = opts.positionals
    paths = opts.pathspecs or []
    target = None
    if switch or opts.pathspecs is not None or len(positionals) <= 1 or created:
        target = positionals[0] if positionals else None
        paths = paths if not switch else []
    else:
        target, paths = positionals[0], positionals[1:] + paths
    return {
        "target": target,
        "create": created,
        "orphan": opts.has("--orphan"),
        "force": opts.has("-f", "--force", "--discard-changes") or opts.has("-B", "-C"),
        "detach": opts.has("--detach", "-d") if switch else opts.has("--detach"),
        "paths": paths,
        "mode": "paths" if paths else "branch",
    }


def reset_request(args: Sequence[str]) -> dict[str, Any]:
    """``git reset [--soft|--mixed|--hard|--merge|--keep] [<commit>] [-- <paths>]``."""
    opts = split_options(args, _RESET_VALUED)
    mode_flag = opts.last_of("--soft", "--mixed", "--hard", "--merge", "--keep")
    positionals = opts.positionals
    target = positionals[0] if positionals else None
    paths = positionals[1:] + (opts.pathspecs or [])
    mode = mode_flag[2:] if mode_flag else ("paths" if paths else "mixed")
    return {"mode": mode, "target": target or "HEAD", "paths": paths}


def cherry_pick_request(args: Sequence[str]) -> dict[str, Any]:
    """``git cherry-pick [options] <commit>...`` and its sequencer actions."""
    opts = split_options(args, _CHERRY_PICK_VALUED)
    return {
        "action": _action(opts, "pick"),
        "commits": opts.positionals,
        "mainline": _int_or_none(opts.value("-m", "--mainline")),
        "no_commit": opts.has("-n", "--no-commit"),
    }


def tag_request(args: Sequence[str]) -> dict[str, Any]:
    """``git tag``: create, delete or list tags."""
    opts = split_options(args, TAG_VALUED)
    return {
        "names": opts.positionals[:1] if not opts.has("-d", "--delete") else opts.positionals,
        "target": opts.positionals[1] if len(opts.positionals) > 1 else None,
        "delete": opts.has("-d", "--delete"),
        "annotated": opts.has("-a", "--annotate", "-m", "--message", "-F", "--file", "-s"),
        "signed": opts.has("-s", "--sign", "-u", "--local-user"),
        "force": opts.has("-f", "--force"),
    }


def branch_request(args: Sequence[str]) -> dict[str, Any]:
    """``git branch``: create, delete, rename or list branches."""
    opts = split_options(args, _BRANCH_VALUED)
    return {
        "names": opts.positionals,
        "delete": opts.has("-d", "-D", "--delete"),
        "force": opts.has("-f", "--force", "-D", "-M", "-C"),
        "move": opts.has("-m", "-M", "--move"),
        "copy": opts.has("-c", "-C", "--copy"),
        "set_upstream_to": opts.value("-u", "--set-upstream-to"),
    }


def update_ref_request(args: Sequence[str]) -> dict[str, Any]:
    """``git update-ref [-d] <ref> ...`` / ``git symbolic-ref [-d] <name> ...``."""
    opts = split_options(args, frozenset({"-m"}))
    return {
        "ref": opts.positionals[0] if opts.positionals else None,
        "delete": opts.has("-d", "--delete"),
    }


_BUILDERS: dict[str, Callable[[Sequence[str]], dict[str, Any]]] = {
    "clone": clone_request,
    "fetch": fetch_request,
    "pull": pull_request,
    "push": push_request,
    "rebase": rebase_request,
    "merge": merge_request,
    "commit": commit_request,
    "checkout": checkout_request,
    "switch": lambda args: checkout_request(args, switch=True),
    "reset": reset_request,
    "cherry-pick": cherry_pick_request,
    "tag": tag_request,
    "branch": branch_request,
    "update-ref": update_ref_request,
    "symbolic-ref": update_ref_request,
}


def request_details(subcommand: str | None, args: Sequence[str]) -> dict[str, Any]:
    """What the command line asked for, as event details (without ``subcommand``/``argv``)."""
    builder = _BUILDERS.get(subcommand or "")
    return builder(args) if builder else {}


def rewrite_for_alias(inv: Invocation, alias: str, expansion: Sequence[str]) -> Invocation:
    """The invocation git actually ran after expanding ``alias`` (trace2 ``alias`` argv)."""
    if inv.subcommand != alias or not expansion:
        return inv
    return inv.with_command(expansion[0], list(expansion[1:]))


# --- push refs -------------------------------------------------------------------------

_TRACKING_PREFIX = "refs/remotes/"


def push_refs_from_packets(commands: Sequence[Any], advertised: dict[str, str]
                           ) -> tuple[list[dict[str, Any]], list[str]]:
    """Push ``refs`` entries from a packet trace, plus the remote's pre-push tips.

    ``commands`` are :class:`gitaudit.capture.trace2.PushCommand`; ``forced``
    is filled in later from the commit graph.
    """
    refs = [
        {
            "ref": command.ref,
            "old": command.old,
            "new": command.new,
            "created": command.old is None,
            "deleted": command.new is None,
            "forced": False,
            "status": {"ok": "ok", "ng": "rejected"}.get(command.status or ""),
            "reason": command.reason,
        }
        for command in commands
    ]
    return refs, sorted(set(advertised.values()))


def push_refs_from_tracking(before: dict[str, str], after: dict[str, str]
                            ) -> tuple[list[dict[str, Any]], list[str]]:
    """Push ``refs`` entries from remote-tracking refs that changed during the push.

    ``refs/remotes/<remote>/<branch>`` is reported as ``refs/heads/<branch>``.
    Lower fidelity than the packet trace (tags and refs without a tracking
    ref are invisible), used when the user traces packets themselves.
    """
    refs: list[dict[str, Any]] = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new or not name.startswith(_TRACKING_PREFIX):
            continue
        parts = name[len(_TRACKING_PREFIX) :].split("/", 1)
        if len(parts) < 2 or parts[1] == "HEAD":
            continue
        refs.append({
            "ref": "refs/heads/" + parts[1],
            "remote": parts[0],
            "old": old,
            "new": new,
            "created": old is None,
            "deleted": new is None,
            "forced": False,
            "status": "ok",
        })
    return refs, sorted(set(before.values()))
