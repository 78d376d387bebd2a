"""``gitaudit resolve``: Claude proposes a resolution of each conflicted file, we validate it.

The repository must be stopped on conflicts (merge, rebase, cherry-pick,
revert, pull: :func:`gitaudit.capture.gitstate.current_stop`). For each
conflicted file (:func:`gitaudit.capture.conflicts.read_conflicts`, index
stages 1/2/3) the model gets base, ours, theirs and the working-tree file
with its conflict hunks, through the audited client
(:class:`gitaudit.claude.AuditedAnthropic`), so every call is a
``claude.request`` event whose parent is the stop's ``conflict.detected``
event (:func:`gitaudit.capture.conflicts.conflict_id`, the id every capture
path derives for the stop). Every secret the sanitizer finds is replaced by
a placeholder before sending and restored in the answer
(:mod:`gitaudit.claude.placeholders`).

The answer holds the whole file between ``<resolved_file>`` tags; it is
checked (:mod:`gitaudit.claude.validate`, then ``--check CMD`` with the
proposal in place, reverted when the command fails), shown as a diff against
ours and confirmed on a terminal unless ``--yes``, then written and staged
(``git add``). Each accepted file records ``conflict.resolved`` (resolution
``claude``, model, the linked ``claude.request`` ids, the checks); a proposal
that fails a check or is declined records ``validation.failed`` and leaves
the file as it was. Binary, oversized, undecodable and modify/delete files
are skipped with the reason. Nothing is committed: the user continues the
operation. ``--dry-run`` asks and checks but changes nothing.

The requests run a few at a time (:data:`WORKERS`) while earlier answers are
checked and confirmed in path order, so a run is dominated by the model's own
latency. An API failure that concerns every request (no credentials, the
endpoint unreachable, credentials refused, rate limited or overloaded after the
SDK's retries) ends the run: files decided before it keep their result, the
rest are left untouched, and :class:`ResolveError` says what to do.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from gitaudit import catalog
from gitaudit.capture import conflicts, context, gitcmd, gitstate, history
from gitaudit.capture.record import repo_object
from gitaudit.claude import flush, validate
from gitaudit.claude.placeholders import MaskError, SecretMask
from gitaudit.config import Settings
from gitaudit.errors import GitauditError
from gitaudit.pipeline import Pipeline

SOURCE = "cli"
WORKERS = 4  # requests in flight at once
# Output budget of one answer: below the SDK's limit for a non-streaming call (it refuses
# max_tokens whose expected duration passes 10 minutes: 21,333 tokens).
MAX_TOKENS = 20_000
EXPLANATION_CHARS = 2000
CHECK_OUTPUT_CHARS = 2000
FLUSH_SECONDS = 10.0

SYSTEM_PROMPT = """\
You resolve git conflicts. You get one conflicted file: the merge base, "ours", "theirs" \
and the working-tree file with git's conflict markers. Produce the complete resolved file: \
keep the intent of both sides where they are compatible, keep everything outside the \
conflict hunks exactly as it is, and leave no conflict markers.

Write the complete resolved file between <resolved_file> and </resolved_file>, exactly once, \
with nothing else between the tags (no code fences). Before or after the tags, explain your \
choices in a few sentences.

Strings like <gitaudit-secret-…> stand for secrets that were removed before sending: copy \
them verbatim where the value belongs and never invent their content."""


class ResolveError(GitauditError):
    """``gitaudit resolve`` cannot go on; the message says why and what to do.

    ``report`` holds what was decided before the run ended, when it got that far.
    """

    report: Report | None = None


@dataclass
class Options:
    """What the operator asked for."""

    paths: list[str] = field(default_factory=list)
    model: str | None = None
    check: str | None = None
    dry_run: bool = False
    yes: bool = False
    interactive: bool = False  # a terminal to show diffs on and ask


@dataclass
class Conflicted:
    """One conflicted file: its stages as text, or why it is skipped."""

    path: str
    kind: str
    stages: dict[str, str | None]
    base: str | None = None
    ours: str | None = None
    theirs: str | None = None
    merged: str = ""  # the working-tree file, conflict markers and all
    skip: str | None = None


@dataclass
class Outcome:
    """What became of one file (also the ``--format json`` entry)."""

    path: str
    kind: str
    status: str  # resolved, valid (dry run), invalid, declined, skipped, error, not_asked
    reason: str | None = None
    request_ids: list[str] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    event_id: str | None = None
    secrets_masked: int = 0
    diff: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (the diff is left out)."""
        return {
            "path": self.path, "kind": self.kind, "status": self.status, "reason": self.reason,
            "claude_request_ids": self.request_ids, "checks": self.checks,
            "event_id": self.event_id, "secrets_masked": self.secrets_masked,
        }  # fmt: skip


@dataclass
class Answer:
    """One model call for one file: the text, or the exception it raised."""

    mask: SecretMask | None
    text: str = ""
    stop_reason: str | None = None
    request_ids: list[str] = field(default_factory=list)
    error: BaseException | None = None


@dataclass
class Report:
    """The whole run: where it stopped, the model and each file's outcome."""

    stopped_in: str
    conflict_id: str
    model: str
    dry_run: bool
    outcomes: list[Outcome] = field(default_factory=list)
    error: str | None = None

    @property
    def exit_code(self) -> int:
        """0 when every file asked about was resolved (or would be), else 1."""
        ok = {"valid"} if self.dry_run else {"resolved"}
        return 0 if self.outcomes and all(o.status in ok for o in self.outcomes) else 1

    def as_dict(self) -> dict[str, Any]:
        """The ``--format json`` document."""
        return {
            "stopped_in": self.stopped_in, "conflict_id": self.conflict_id, "model": self.model,
            "dry_run": self.dry_run, "files": [o.as_dict() for o in self.outcomes],
            "error": self.error,
        }  # fmt: skip


# --- the repository -------------------------------------------------------------------------


def locate(cwd: str, environ: dict[str, str]) -> tuple[gitstate.Layout, tuple[str, str, int]]:
    """The repository around ``cwd`` and the stop it is on; raises :class:`ResolveError`."""
    layout = gitstate.discover(os.path.abspath(cwd), environ)
    if layout is None or layout.worktree is None:
        raise ResolveError(
            f"{cwd} is not inside a git working tree",
            "run gitaudit resolve in the repository whose merge or rebase stopped on conflicts",
        )
    stop = gitstate.current_stop(layout, gitstate.ended_stops(layout))
    if stop is None:
        raise ResolveError(
            "the repository is not stopped on a conflict (no merge, rebase, cherry-pick or "
            "revert in progress)",
            "gitaudit resolve runs after git merge/rebase/cherry-pick/revert/pull stopped on "
            "conflicts; `git status` shows whether one has",
        )
    return layout, stop


def _text(data: bytes | None, what: str) -> tuple[str | None, str | None]:
    """(text, None) or (None, why it cannot be sent)."""
    if data is None:
        return None, None
    if b"\0" in data:
        return None, f"binary file ({what} holds NUL bytes): resolve it by hand"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, (f"not valid UTF-8 text ({what}, byte {exc.start}): resolve it by hand")


def load_file(repo: Any, worktree: str, item: dict[str, Any], max_bytes: int) -> Conflicted:
    """The stages of one conflicted path as text, or the reason it is skipped."""
    stages = item["stages"]
    found = Conflicted(item["path"], item["kind"], stages)
    if stages.get("ours") is None or stages.get("theirs") is None:
        found.skip = ("modify/delete conflict (one side deleted the file): keep it with "
                      "`git add` or delete it with `git rm`")
        return found
    if os.path.islink(os.path.join(worktree, found.path)):
        found.skip = "symbolic link: choose a side by hand (git checkout --ours/--theirs)"
        return found
    try:
        blobs = {name: repo[oid] if oid else None for name, oid in stages.items()}
    except KeyError:
        found.skip = "not a file (a submodule commit): choose a side by hand"
        return found
    if any(blob is not None and blob.type_str != "blob" for blob in blobs.values()):
        found.skip = "not a file (a submodule commit): choose a side by hand"
        return found
    for name, blob in blobs.items():
        if blob is not None and blob.size > max_bytes:
            found.skip = (f"{name} is {blob.size} bytes, over resolve_max_bytes ({max_bytes}): "
                          "resolve it by hand or raise GITAUDIT_RESOLVE_MAX_BYTES")
            return found
    for name in ("base", "ours", "theirs"):
        blob = blobs.get(name)
        if blob is not None and blob.is_binary:
            found.skip = f"binary file ({name}): resolve it by hand"
            return found
        text, problem = _text(blob.data if blob is not None else None, name)
        if problem:
            found.skip = problem
            return found
        setattr(found, name, text)
    try:
        with open(os.path.join(worktree, found.path), "rb") as handle:
            merged = handle.read(max_bytes * 4 + 1)
    except OSError:
        merged = b""
    text, problem = _text(merged, "the working-tree file")
    if problem:
        found.skip = problem
        return found
    found.merged = text or ""
    return found


def select(files: list[dict[str, Any]], wanted: list[str], cwd: str, worktree: str
           ) -> list[dict[str, Any]]:
    """The conflicted files named by ``wanted`` (paths relative to ``cwd``); all when empty."""
    if not wanted:
        return files
    by_path = {item["path"]: item for item in files}
    chosen: list[dict[str, Any]] = []
    root = os.path.realpath(worktree)
    for name in wanted:
        full = os.path.realpath(os.path.join(cwd, name))
        relative = os.path.relpath(full, root).replace(os.sep, "/")
        if relative not in by_path:
            raise ResolveError(
                f"{name} is not a conflicted file",
                f"conflicted files: {', '.join(sorted(by_path)) or '(none)'}",
            )
        if by_path[relative] not in chosen:
            chosen.append(by_path[relative])
    return chosen


# --- asking ----------------------------------------------------------------------------------


def build_prompt(item: Conflicted, stopped_in: str, applied: str) -> str:
    """The user message for one file (before masking)."""
    ours_is = "the upstream being rebased onto" if stopped_in == "rebase" else "HEAD"
    parts = [
        f"git stopped on a conflict during a {stopped_in} (applying commit {applied}).",
        f'"ours" is {ours_is}; "theirs" is the change being applied.',
        f"File: {item.path} (conflict kind: {item.kind})",
        "",
    ]
    for name in ("base", "ours", "theirs"):
        value = getattr(item, name)
        if value is None:
            parts.append(f"<{name} absent=\"true\"/>")
        else:
            parts.append(f"<{name}>\n{value}</{name}>")
    parts.append(f"<working_tree_with_conflict_markers>\n{item.merged}"
                 "</working_tree_with_conflict_markers>")
    return "\n".join(parts)


def _answer_text(message: Any) -> str:
    return "".join(
        getattr(block, "text", "") for block in getattr(message, "content", None) or []
        if getattr(block, "type", None) == "text"
    )


def make_client(settings: Settings, *, parent_id: str, correlation_id: str,
                on_record: Callable[[dict[str, Any]], None], http_client: Any) -> Any:
    """The audited client for one file's request (see :class:`gitaudit.claude.AuditedAnthropic`)."""
    from gitaudit.claude import AuditedAnthropic

    return AuditedAnthropic(
        http_client=http_client, audit_parent_id=parent_id, audit_correlation_id=correlation_id,
        audit_settings=settings, on_record=on_record,
    )


def ask(item: Conflicted, *, model: str, redactor: Any, stop: tuple[str, str, int],
        client_for: Callable[[Callable[[dict[str, Any]], None]], Any]) -> Answer:
    """One request for one file; errors are kept in the answer (the caller decides)."""
    answer = Answer(mask=SecretMask(redactor))
    prompt = build_prompt(item, stop[0], stop[1])
    try:
        assert answer.mask is not None  # noqa: S101 - set just above
        while answer.mask.collides(prompt):
            answer.mask = SecretMask(redactor)
        masked = answer.mask.mask(prompt)
        client = client_for(lambda event: answer.request_ids.append(str(event.get("id"))))
        message = client.messages.create(
            model=model, max_tokens=MAX_TOKENS, system=SYSTEM_PROMPT,
            messages=[{"role": "user", "content": masked}],
        )
        answer.text = _answer_text(message)
        answer.stop_reason = getattr(message, "stop_reason", None)
    except Exception as exc:  # noqa: BLE001 - handed to the caller with the file it concerns
        answer.error = exc
    return answer


def fatal_error(exc: BaseException, base_url: str) -> ResolveError | None:
    """The run-ending error an SDK exception means, or None when it concerns one file only."""
    try:
        import anthropic
    except ImportError:  # pragma: no cover - a dependency of gitaudit
        return None
    nothing = "; nothing was changed for the files not yet resolved"
    if isinstance(exc, TypeError) and "authentication" in str(exc):
        return ResolveError(
            "no Anthropic API key: the request was not sent" + nothing,
            "export ANTHROPIC_API_KEY=... (or ANTHROPIC_AUTH_TOKEN) and run gitaudit resolve again",
        )
    if isinstance(exc, anthropic.APITimeoutError | anthropic.APIConnectionError):
        return ResolveError(
            f"cannot reach the Anthropic API at {base_url} ({type(exc).__name__})" + nothing,
            "check the network connection (and ANTHROPIC_BASE_URL if set), then run "
            "gitaudit resolve again",
        )
    if isinstance(exc, anthropic.AuthenticationError | anthropic.PermissionDeniedError):
        return ResolveError(
            f"the Anthropic API refused the credentials (HTTP {exc.status_code})" + nothing,
            "check ANTHROPIC_API_KEY / ANTHROPIC_AUTH_TOKEN",
        )
    if isinstance(exc, anthropic.NotFoundError):
        return ResolveError(
            f"the Anthropic API does not know what was asked for ({exc.message})" + nothing,
            "check the model name (--model, GITAUDIT_CLAUDE_MODEL) and ANTHROPIC_BASE_URL",
        )
    if isinstance(exc, anthropic.RateLimitError | anthropic.InternalServerError):
        return ResolveError(
            f"the Anthropic API is rate limited or unavailable (HTTP {exc.status_code}) after "
            "the SDK's retries" + nothing,
            "wait a little and run gitaudit resolve again for the remaining files",
        )
    return None


# --- deciding ----------------------------------------------------------------------------------


def run_check(command: str, worktree: str, path: str) -> tuple[int, str]:
    """Run ``--check`` in the working tree (``GITAUDIT_RESOLVE_PATH`` names the file)."""
    env = {**os.environ, "GITAUDIT_RESOLVE_PATH": path}
    try:
        done = subprocess.run(  # noqa: S602 - the operator's own command line, as typed
            command, shell=True, cwd=worktree, env=env, capture_output=True, check=False,
        )
    except OSError as exc:
        return 127, str(exc)
    output = (done.stdout + done.stderr).decode("utf-8", "replace").strip()
    return done.returncode, output[-CHECK_OUTPUT_CHARS:]


def unified_diff(path: str, ours: str, proposal: str) -> str:
    """The proposal against ours as a unified diff."""
    return "".join(difflib.unified_diff(
        ours.splitlines(keepends=True), proposal.splitlines(keepends=True),
        fromfile=f"a/{path} (ours)", tofile=f"b/{path} (claude)",
    ))


def _trailing_newline(proposal: str, item: Conflicted) -> str:
    sides = [side for side in (item.ours, item.theirs) if side]
    if proposal and not proposal.endswith("\n") and sides and all(
        side.endswith("\n") for side in sides
    ):
        return proposal + "\n"
    return proposal


def _write(path: str, data: bytes | None) -> None:
    """Write ``data`` in place (the file keeps its mode); None: remove the file."""
    if data is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    with open(path, "wb") as handle:
        handle.write(data)


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


class Resolver:
    """One ``gitaudit resolve`` run (see the module docstring)."""

    def __init__(self, settings: Settings, options: Options, *, cwd: str,
                 environ: dict[str, str], confirm: Callable[[str, str], bool],
                 say: Callable[[str], None]) -> None:
        self.settings = settings
        self.options = options
        self.cwd = cwd
        self.environ = environ
        self.confirm = confirm  # (path, diff) -> accepted?
        self.say = say
        self.model = options.model or settings.claude_model
        self.pipeline = Pipeline(settings)
        self.layout, self.stop = locate(cwd, environ)
        self.worktree = str(self.layout.worktree)
        self.git = self._find_git()
        self.detected_id = conflicts.conflict_id(self.layout, self.stop)
        self.state = self._state()
        self.actor, self.repo_info = self._who_and_where()

    def _find_git(self) -> str:
        from gitaudit.capture.wrapper import find_real_git

        return find_real_git(self.settings.git, self.environ, None)

    def _state(self) -> dict[str, Any]:
        """The stop as the capture paths describe it (their correlation id when they saw it)."""
        saved = gitstate.load_conflict_state(gitstate.conflict_state_path(self.layout))
        correlation = None
        self.saved = saved is not None and saved.get("detected_id") == self.detected_id
        if saved is not None and self.saved:
            correlation = saved.get("correlation_id")
        if not isinstance(correlation, str) or not correlation:
            correlation = context.correlation_id(self.environ, catalog.uuid7)
        head = gitstate.RefReader(self.layout).oid("HEAD")
        return conflicts.new_state(
            detected_id=self.detected_id, correlation_id=correlation,
            operation=catalog.operation_for(self.stop[0]), stop=self.stop,
            stopped_in=self.stop[0], head=head, files=[],
        )

    def _who_and_where(self) -> tuple[dict[str, Any], dict[str, Any]]:
        params = gitstate.config_params(self.git, self.layout, self.worktree, self.environ)
        name, email = context.git_identity(self.environ, params)
        uid = os.getuid()
        actor = context.build_actor(
            uid=uid, user=context.os_user(self.environ, uid), host=os.uname().nodename,
            git_name=name, git_email=email, ci=context.ci_info(self.environ),
        )
        head = gitstate.RefReader(self.layout).head()
        where = repo_object(os.path.realpath(self.worktree), params, branch=head.ref,
                            head_before=head.oid, head_after=head.oid)
        return actor, where

    # -- events --

    def _record(self, operation: str, outcome: Outcome, extra: dict[str, Any]) -> None:
        found = {
            "operation": self.state["operation"], "stopped_in": self.state["stopped_in"],
            "ours_is": self.state["ours_is"], "stopped_at": self.state["stopped_at"],
            "path": outcome.path,
            "files": [{"path": outcome.path, "kind": outcome.kind, "resolution": "claude"}
                      if operation == "conflict.resolved"
                      else {"path": outcome.path, "kind": outcome.kind}],
            "resolution": "claude", "model": self.model,
            "claude_request_ids": outcome.request_ids, "validation": outcome.checks,
            "secrets_masked": outcome.secrets_masked, **extra,
        }  # fmt: skip
        event = conflicts.lifecycle_event(
            operation, found, source=SOURCE, state=self.state, actor=self.actor,
            repo=self.repo_info, exit_code=0 if operation == "conflict.resolved" else 1,
        )
        if operation != "conflict.resolved":
            event["result"]["error"] = outcome.reason
        outcome.event_id = event["id"]
        delivery = self.pipeline.emit([event])
        if delivery is not None and delivery.warning:
            print(f"gitaudit: warning: {delivery.warning}", file=sys.stderr)

    # -- the run --

    def run(self) -> Report:
        """Ask, check, confirm, write and stage each conflicted file; the report says how."""
        report = Report(self.stop[0], self.detected_id, self.model, self.options.dry_run)
        files = conflicts.read_conflicts(self.layout)
        if not files:
            raise ResolveError(
                f"no conflicted files left in this {self.stop[0]}",
                f"check with `git status`, then `git {self.stop[0]} --continue`",
            )
        chosen = select(files, self.options.paths, self.cwd, self.worktree)
        repo = history.open_repository(self.layout.git_dir)
        items = [load_file(repo, self.worktree, item, self.settings.resolve_max_bytes)
                 for item in chosen]
        asked = [item for item in items if item.skip is None]
        if asked and not (self.options.yes or self.options.dry_run or self.options.interactive):
            raise ResolveError(
                "no terminal to show the proposals on and ask",
                "pass --yes to accept every proposal that passes the checks, or --dry-run",
            )
        from anthropic import DefaultHttpxClient

        http_client = DefaultHttpxClient()
        redactor = self.pipeline.redactor

        def client_for(on_record: Callable[[dict[str, Any]], None]) -> Any:
            return make_client(self.settings, parent_id=self.detected_id,
                               correlation_id=self.state["correlation_id"],
                               on_record=on_record, http_client=http_client)

        pool = ThreadPoolExecutor(max_workers=max(1, min(WORKERS, len(asked))))
        futures: dict[str, Future[Answer]] = {
            item.path: pool.submit(ask, item, model=self.model, redactor=redactor,
                                   stop=self.stop, client_for=client_for)
            for item in asked
        }
        try:
            for item in items:
                if item.skip is not None:
                    report.outcomes.append(Outcome(item.path, item.kind, "skipped", item.skip))
                    self.say(f"skipped   {item.path}: {item.skip}")
                    continue
                answer = futures[item.path].result()
                if answer.error is not None:
                    fatal = fatal_error(answer.error, self._base_url())
                    if fatal is None and isinstance(answer.error, MaskError):
                        self._settle(item, answer, report, invalid=str(answer.error.message))
                        continue
                    if fatal is None:
                        self._settle(item, answer, report, invalid=(
                            f"the request failed: {type(answer.error).__name__}: "
                            f"{' '.join(str(answer.error).split())[:300]}"))
                        continue
                    report.outcomes.append(Outcome(
                        item.path, item.kind, "error", fatal.message, list(answer.request_ids),
                        secrets_masked=answer.mask.count if answer.mask else 0))
                    for rest in items[items.index(item) + 1:]:
                        report.outcomes.append(Outcome(
                            rest.path, rest.kind, "skipped" if rest.skip else "not_asked",
                            rest.skip or "the run ended before this file was resolved"))
                    report.error = fatal.message
                    fatal.report = report
                    raise fatal
                self._decide(item, answer, report)
        finally:
            for future in futures.values():
                future.cancel()
            pool.shutdown(wait=True)
            http_client.close()
            flush(FLUSH_SECONDS)  # the claude.request events are handed over before we return
        return report

    def _base_url(self) -> str:
        return self.environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com"

    def _settle(self, item: Conflicted, answer: Answer, report: Report, *, invalid: str,
                checks: list[dict[str, Any]] | None = None, declined: bool = False) -> None:
        outcome = Outcome(item.path, item.kind, "declined" if declined else "invalid", invalid,
                          list(answer.request_ids), checks or [],
                          secrets_masked=answer.mask.count if answer.mask else 0)
        report.outcomes.append(outcome)
        extra: dict[str, Any] = {"reason": invalid}
        explanation = self._explanation(answer)
        if explanation:
            extra["explanation"] = explanation
        if answer.stop_reason:
            extra["stop_reason"] = answer.stop_reason
        self._record("validation.failed", outcome, extra)
        self.say(f"{outcome.status:<9} {item.path}: {invalid} (file left as it was)")

    def _explanation(self, answer: Answer) -> str | None:
        if not answer.text or answer.mask is None:
            return None
        try:
            _, outside = validate.parse_answer(answer.text, None)
        except validate.AnswerError:
            outside = answer.text
        text = self.pipeline.redactor.redact_text(answer.mask.unmask(outside)).strip()
        return text[:EXPLANATION_CHARS] or None

    def _decide(self, item: Conflicted, answer: Answer, report: Report) -> None:
        mask = answer.mask
        assert mask is not None  # noqa: S101 - every answer without an error has its mask
        try:
            body, _ = validate.parse_answer(answer.text, answer.stop_reason)
        except validate.AnswerError as exc:
            self._settle(item, answer, report, invalid=str(exc))
            return
        unknown = mask.unknown(body)
        if unknown:
            self._settle(item, answer, report, invalid=(
                f"the answer holds placeholders that stand for no secret: {', '.join(unknown)}"))
            return
        proposal = _trailing_newline(mask.unmask(body), item)
        checks = validate.check_proposal(item.path, proposal, base=item.base, ours=item.ours,
                                         theirs=item.theirs)
        failed = validate.failures(checks)
        if failed:
            self._settle(item, answer, report, invalid="; ".join(failed), checks=checks)
            return
        self._place(item, answer, report, proposal, checks)

    def _note_staged(self, path: str) -> None:
        """Tell the stop's saved state which blob Claude's proposal became (see
        :func:`gitaudit.capture.conflicts.note_claude`), when a capture path saved it."""
        if not self.saved:
            return
        staged = gitcmd.run(self.git, ["rev-parse", f":0:{path}"], cwd=self.worktree,
                            environ=self.environ, check=False)
        blob = staged.stdout.decode("ascii", "replace").strip()
        if staged.returncode == 0 and gitstate.is_oid(blob):
            conflicts.note_claude(self.layout, self.detected_id, path, blob)

    def _command_check(self, item: Conflicted, target: str, data: bytes, before: bytes | None,
                       checks: list[dict[str, Any]]) -> str | None:
        """Run ``--check`` with the proposal in place; the reason it failed (file put back)."""
        assert self.options.check is not None  # noqa: S101 - only called with --check
        _write(target, data)
        status, output = run_check(self.options.check, self.worktree, item.path)
        checks.append({"check": "command", "ok": status == 0,
                       "detail": f"exit code {status}" if status else None})
        if status == 0:
            return None
        _write(target, before)
        tail = self.pipeline.redactor.redact_text(output)[-500:]
        return f"--check failed with exit code {status}" + (f": {tail}" if tail else "")

    def _place(self, item: Conflicted, answer: Answer, report: Report, proposal: str,
               checks: list[dict[str, Any]]) -> None:
        """``--check``, then confirm, write and stage a proposal that passed the checks."""
        target = os.path.join(self.worktree, item.path)
        before = _read(target)
        data = proposal.encode("utf-8")
        diff = unified_diff(item.path, item.ours or "", proposal)
        secrets = answer.mask.count if answer.mask else 0
        try:
            if self.options.check:
                failed = self._command_check(item, target, data, before, checks)
                if failed:
                    self._settle(item, answer, report, invalid=failed, checks=checks)
                    return
            if self.options.dry_run:
                report.outcomes.append(Outcome(item.path, item.kind, "valid", None,
                                               list(answer.request_ids), checks,
                                               secrets_masked=secrets, diff=diff))
                self.say(f"valid     {item.path} (dry run: not written)")
                return
            if not self.options.yes and not self.confirm(item.path, diff):
                _write(target, before)
                self._settle(item, answer, report, invalid="declined by the operator",
                             checks=checks, declined=True)
                return
            _write(target, data)
            gitcmd.run(self.git, ["add", "--", item.path], cwd=self.worktree,
                       environ=self.environ)
            self._note_staged(item.path)
        except BaseException:
            _write(target, before)  # interrupted or git add failed: the file as it was
            raise
        finally:
            if self.options.dry_run and self.options.check:
                _write(target, before)
        outcome = Outcome(item.path, item.kind, "resolved", None, list(answer.request_ids),
                          checks, secrets_masked=secrets, diff=diff)
        report.outcomes.append(outcome)
        extra: dict[str, Any] = {"action": "resolve", "concluded_by": "gitaudit.resolve"}
        explanation = self._explanation(answer)
        if explanation:
            extra["explanation"] = explanation
        self._record("conflict.resolved", outcome, extra)
        self.say(f"resolved  {item.path} (staged)")
