"""`gitaudit trace2 enable|disable --system|--global`: send every git's trace2 to the daemon.

git reads ``trace2.*`` settings only from the system and global config, so
that is where this writes (through :mod:`gitaudit.capture.gitcmd`, the one way
gitaudit runs git):

- ``trace2.eventTarget = af_unix:stream:<runtime dir>/trace2.sock``
  (refused if another target is set, unless ``--force``);
- ``trace2.eventBrief = true`` when unset (smaller lines; a marker
  ``gitaudit.trace2EventBrief`` remembers that gitaudit set it);
- ``trace2.envVars`` and ``trace2.configParams`` gain gitaudit's items
  (correlation and CI variables; identity and remote URLs), keeping the
  user's own.

``disable`` undoes exactly that: the target if it is a gitaudit trace2
socket, the brief flag if gitaudit set it, gitaudit's list items. Both are
idempotent. The planning is pure (:func:`plan_enable`, :func:`plan_disable`).
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from typing import Annotated

import typer

from gitaudit import config, paths
from gitaudit.capture import context, gitcmd
from gitaudit.errors import GitauditError

TARGET = "trace2.eventtarget"
BRIEF = "trace2.eventbrief"
ENV_VARS = "trace2.envvars"
CONFIG_PARAMS = "trace2.configparams"
BRIEF_MARKER = "gitaudit.trace2eventbrief"
KEYS = (TARGET, BRIEF, ENV_VARS, CONFIG_PARAMS, BRIEF_MARKER)
OUR_PARAMS = ("user.name", "user.email", "remote.*.url")
TARGET_PREFIX = "af_unix:stream:"

Plan = dict[str, str | None]  # key -> new value; None: unset


class Scope(enum.StrEnum):
    """Which git config file: the machine's or the user's."""

    system = "system"
    global_ = "global"


def default_socket(settings: config.Settings) -> str:
    """The daemon's trace2 socket path (``GITAUDIT_RUNTIME_DIR`` or the default runtime dir)."""
    return os.path.join(paths.daemon_runtime_dir(settings.runtime_dir), paths.TRACE2_SOCKET)


def _items(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _merged(current: str | None, ours: tuple[str, ...]) -> str:
    items = _items(current)
    return ",".join(items + [item for item in ours if item not in items])


def _without(current: str | None, ours: tuple[str, ...]) -> str | None:
    items = [item for item in _items(current) if item not in ours]
    return ",".join(items) if items else None


def is_ours(target: str | None) -> bool:
    """True if ``target`` is a gitaudit trace2 socket (``af_unix:stream:.../trace2.sock``)."""
    return bool(target) and str(target).startswith(TARGET_PREFIX) and str(target).endswith(
        "/" + paths.TRACE2_SOCKET
    )


def plan_enable(current: Mapping[str, str | None], socket_path: str, force: bool) -> Plan:
    """The changes that enable trace2 capture, given the ``current`` values of :data:`KEYS`."""
    target = TARGET_PREFIX + socket_path
    existing = current.get(TARGET)
    if existing and existing != target and not is_ours(existing) and not force:
        raise GitauditError(
            f"trace2.eventTarget is already set to {existing!r}",
            "another tool collects git's trace2 events; pass --force to replace it",
        )
    plan: Plan = {TARGET: target}
    if current.get(BRIEF) is None:
        plan[BRIEF] = "true"
        plan[BRIEF_MARKER] = "true"
    plan[ENV_VARS] = _merged(current.get(ENV_VARS), context.TRACE2_ENV_VARS)
    plan[CONFIG_PARAMS] = _merged(current.get(CONFIG_PARAMS), OUR_PARAMS)
    return {key: value for key, value in plan.items() if current.get(key) != value}


def plan_disable(current: Mapping[str, str | None]) -> Plan:
    """The changes that undo :func:`plan_enable` (and nothing else)."""
    plan: Plan = {}
    if is_ours(current.get(TARGET)):
        plan[TARGET] = None
    if current.get(BRIEF_MARKER) is not None:
        plan[BRIEF_MARKER] = None
        if current.get(BRIEF) is not None:
            plan[BRIEF] = None
    plan[ENV_VARS] = _without(current.get(ENV_VARS), context.TRACE2_ENV_VARS)
    plan[CONFIG_PARAMS] = _without(current.get(CONFIG_PARAMS), OUR_PARAMS)
    return {key: value for key, value in plan.items() if current.get(key) != value}


class GitConfig:
    """One git config file (``--system`` or ``--global``), read and written through git."""

    def __init__(self, scope: Scope, git: str) -> None:
        self.flag = f"--{scope.value}"
        self.scope = scope
        self.git = git

    def read(self) -> dict[str, str | None]:
        """Current values of :data:`KEYS` in this file (None when unset)."""
        values: dict[str, str | None] = {}
        for key in KEYS:
            out = gitcmd.run(self.git, ["config", self.flag, "--get", key], cwd="/", check=False)
            values[key] = out.stdout.decode("utf-8", "replace").strip() if out.returncode == 0 \
                else None
        return values

    def apply(self, plan: Plan) -> None:
        """Write the plan; a refused write says how to get permission."""
        for key, value in plan.items():
            args = ["config", self.flag, key, value] if value is not None else [
                "config", self.flag, "--unset-all", key]
            try:
                gitcmd.run(self.git, args, cwd="/")
            except gitcmd.GitCommandError as exc:
                raise self._refused(exc) from exc

    def _refused(self, exc: gitcmd.GitCommandError) -> GitauditError:
        stderr = exc.output.stderr.decode("utf-8", "replace").strip()
        if self.scope is Scope.system:
            hint = "run it as root (sudo gitaudit trace2 enable --system), or use --global"
        else:
            hint = "check that your global git config (~/.gitconfig) is writable"
        return GitauditError(f"cannot write the {self.scope.value} git config: {stderr}", hint)


def _scope(system: bool, global_: bool) -> Scope:
    if system == global_:
        raise GitauditError("choose exactly one of --system and --global",
                            "--system for every user of this machine, --global for yourself")
    return Scope.system if system else Scope.global_


def _git(settings: config.Settings) -> str:
    from gitaudit.capture.wrapper import find_real_git

    return find_real_git(str(settings.git) if settings.git else None, os.environ, None)


SystemOpt = Annotated[bool, typer.Option("--system", help="The machine's git config.")]
GlobalOpt = Annotated[bool, typer.Option("--global", help="Your own git config.")]


def enable_command(
    system: SystemOpt = False,
    global_: GlobalOpt = False,
    socket: Annotated[
        str | None, typer.Option("--socket", metavar="PATH",
                                 help="trace2 socket path. Default: the daemon's.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace another trace2.eventTarget.")
    ] = False,
) -> None:
    """Send every git's trace2 events to the gitaudit daemon (git config --system/--global)."""
    scope = _scope(system, global_)
    settings = config.load()
    socket_path = os.path.abspath(socket) if socket else default_socket(settings)
    target = GitConfig(scope, _git(settings))
    plan = plan_enable(target.read(), socket_path, force)
    target.apply(plan)
    state = "enabled" if plan else "already enabled"
    typer.echo(f"trace2 capture {state} in the {scope.value} git config: {socket_path}")


def disable_command(system: SystemOpt = False, global_: GlobalOpt = False) -> None:
    """Stop sending git's trace2 events to gitaudit (undoes exactly what enable set)."""
    scope = _scope(system, global_)
    target = GitConfig(scope, _git(config.load()))
    plan = plan_disable(target.read())
    target.apply(plan)
    state = "disabled" if plan else "already disabled"
    typer.echo(f"trace2 capture {state} in the {scope.value} git config")
