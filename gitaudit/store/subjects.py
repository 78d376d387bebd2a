"""Data subjects: identities stored as pseudonyms, revealed while their key exists, forgotten.

Erasure by crypto-shredding (``gitaudit forget``, README "Right to erasure"). The
chained body of an event never holds a person's identity once this module runs in
the store writer (:class:`Pseudonymizer`, called by
:meth:`gitaudit.store.writer.ChainWriter.append` before a record is hashed):

- the actor's ``user`` (kind ``user``), ``git_name`` (``name``) and ``git_email``
  (``email``) (also in ``details.claimed_actor``, what a socket client claimed),
  and in every other string of the record each email address (:data:`EMAIL`) and
  the capitalized name right before ``<email>`` (``Name <email>``,
  :data:`NAMED_EMAIL`), are replaced by a token ``subject:<16 hex>``;
- the token is random per subject, NOT derived from the identity: once the
  subject's key row is gone nothing links the token back to the person;
- ``subjects`` keeps per token its kind and the clear identity sealed with AES-GCM
  (token as associated data) under a per-subject 256-bit key; ``subject_keys``
  keeps that key and the blind index ``HMAC-SHA256(index key, kind NUL
  normalized identity)`` that finds the token from a clear value (unique: several
  writers creating the same subject at once insert-or-select one row);
  ``subject_links`` records identities seen together in one actor;
- values already pseudonymized by ``hash_user_ids`` (``anon:<hex>``) and tokens
  are left alone.

Readers reveal (:class:`Revealer`): each token in a stored body is replaced by the
clear identity while the key exists, by ``forgotten subject <token>`` after
(:func:`gitaudit.store.reader.iter_events`, one place for log, tail, trace, stats
and reports; :func:`~gitaudit.store.reader.iter_bodies` stays raw for verify).
``--actor`` filters find the tokens of a clear value (:func:`actor_pseudonyms`).

:func:`forget` deletes the key rows and links of the subject (and of identities
linked only to it), and marks ``subjects.forgotten_at`` (the row stays as a
tombstone; the triggers of revision 0007 let nothing else change). The bodies,
hence the chain, never change: ``gitaudit verify`` still passes.

The writer caches identity -> token in a dict (it runs for every event). On
PostgreSQL a new subject is created and committed at once on a second connection
(autocommit), so writers of different chains never wait for each other; on SQLite
(one writer at a time anyway) it is made in the append's transaction, and cached
for later appends only after that committed (:meth:`Pseudonymizer.committed`). The
whole cache is dropped when the number of forgotten subjects changed since the last
append (one indexed count per batch).
``cryptography`` is imported only when a subject is created or revealed.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, delete, func, or_, select, update
from sqlalchemy.exc import DBAPIError

from gitaudit.errors import GitauditError, UsageError
from gitaudit.store.tables import (
    events,
    subject_index_key,
    subject_keys,
    subject_links,
    subjects,
)

PREFIX: Final = "subject:"
# No look-behind (it would cost the literal-prefix scan, ~10x on a body): a match inside a
# longer word is skipped by the code that uses it (see Revealer._escaped).
TOKEN: Final = re.compile(r"subject:[0-9a-f]{16}(?![0-9a-f])")
# An email address in free text. Not one followed by ':' or '/' (a remote such as
# git@github.com:org/repo or ssh://git@host/repo: a host, not a person).
_EMAIL_TEXT: Final = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
EMAIL: Final = re.compile(_EMAIL_TEXT + r"(?![\w.:/-])")
# ``Name <email>`` (commit trailers, git's author lines): up to four words that each start
# with a capital (or uncased) letter, right before ``<email>``.
NAMED_EMAIL: Final = re.compile(
    r"((?:[^\W\d_a-z][\w.'-]*[ \t]+){0,3}[^\W\d_a-z][\w.'-]*)[ \t]*<(" + _EMAIL_TEXT + r")>"
)
ACTOR_FIELDS: Final = (("user", "user"), ("git_name", "name"), ("git_email", "email"))
_ACTOR_NAMES: Final = frozenset(field for field, _ in ACTOR_FIELDS)
KINDS: Final = ("user", "name", "email")
# Top-level keys that never hold an identity (ids, integrity fields, times).
_SKIPPED_KEYS: Final = frozenset({
    "id", "chain_id", "seq", "prev_hash", "hash", "parent_id", "correlation_id", "occurred_at",
    "schema_version", "operation", "category", "outcome", "severity", "source",
})  # fmt: skip
_ANON: Final = re.compile(r"anon:[0-9a-f]{16}")


class SubjectNotFound(GitauditError):  # noqa: N818 - reads as the condition it reports
    """No stored subject has the identity asked for (``forget`` exit code 3)."""

    exit_code = 3


class SubjectAlreadyForgotten(GitauditError):  # noqa: N818 - reads as the condition
    """Every subject with that identity is forgotten already (``forget`` exit code 4)."""

    exit_code = 4


def forgotten_label(token: str) -> str:
    """What readers show in place of a forgotten subject's identity."""
    return f"forgotten subject {token}"


def is_token(value: str) -> bool:
    """Whether ``value`` is exactly a subject token."""
    return len(value) == len(PREFIX) + 16 and TOKEN.fullmatch(value) is not None


def normalized(kind: str, value: str) -> str:
    """The identity as compared: stripped; an email also lowercased."""
    value = value.strip()
    return value.lower() if kind == "email" else value


def _index_key(conn: Connection) -> bytes:
    key = conn.scalar(select(subject_index_key.c.key).where(subject_index_key.c.id == 1))
    if key is None:  # a store whose revision 0007 row was removed by hand: refuse, clearly
        raise GitauditError(
            "the store has no subject index key (table subject_index_key is empty)",
            "restore it from a backup of the subject tables; see README 'Right to erasure'",
        )
    return bytes(key)


def blind_index(index_key: bytes, kind: str, value: str) -> str:
    """The blind index of identity ``value`` of ``kind``: HMAC-SHA256 hex."""
    data = f"{kind}\0{normalized(kind, value)}".encode("utf-8", "surrogatepass")
    return hmac.new(index_key, data, hashlib.sha256).hexdigest()


def _seal(key: bytes, token: str, clear: str) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, clear.encode("utf-8", "surrogatepass"),
                                       token.encode("ascii"))  # fmt: skip


def _open(key: bytes, token: str, sealed: bytes) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    clear = AESGCM(key).decrypt(sealed[:12], sealed[12:], token.encode("ascii"))
    return clear.decode("utf-8", "surrogatepass")


def _insert(conn: Connection, table: Any) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def forgotten_count(conn: Connection) -> int:
    """How many subjects are forgotten (the writer's cache generation)."""
    query = select(func.count()).select_from(subjects).where(subjects.c.forgotten_at.is_not(None))
    return int(conn.scalar(query) or 0)


# --- the writer's half ---------------------------------------------------------------------


class Pseudonymizer:
    """Replaces identities in records by subject tokens (see the module docstring)."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], str] = {}
        self._pending: dict[tuple[str, str], str] = {}
        self._links: set[tuple[str, str]] = set()
        self._pending_links: set[tuple[str, str]] = set()
        self._index_key: bytes | None = None
        self._generation: int | None = None
        # (user, git_name, git_email) -> their tokens, for actors seen before
        self._actors: dict[Any, dict[str, Any]] = {}

    def begin(self, conn: Connection) -> None:
        """Start an append in ``conn``'s transaction: drop the cache if someone forgot."""
        self._pending.clear()
        self._pending_links.clear()
        generation = forgotten_count(conn)
        if generation != self._generation:
            self._known.clear()
            self._links.clear()
            self._actors.clear()
            self._generation = generation

    def committed(self) -> None:
        """The append's transaction committed: its new subjects may be cached for good."""
        self._known.update(self._pending)
        self._links.update(self._pending_links)
        self._pending.clear()
        self._pending_links.clear()

    def record(self, conn: Connection, record: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``record`` whose identities are tokens (subjects created as needed)."""
        actor = record.get("actor")
        # the actor first: a subject keeps the spelling it was first seen with
        new_actor = self._actor(conn, actor) if isinstance(actor, dict) else actor
        out: dict[str, Any] = {}
        for key, value in record.items():
            if key == "actor":
                out[key] = new_actor
            elif key in _SKIPPED_KEYS:
                out[key] = value
            else:
                out[key] = self._walk(conn, value)
        details = out.get("details")
        if isinstance(details, dict) and isinstance(record["details"].get("claimed_actor"), dict):
            # what a socket client claimed to be: an identity too
            claimed = self._actor(conn, record["details"]["claimed_actor"])
            out["details"] = {**details, "claimed_actor": claimed}
        return out

    def _actor(self, conn: Connection, actor: dict[str, Any]) -> dict[str, Any]:
        ids: Any = tuple((field in actor, actor.get(field)) for field, _ in ACTOR_FIELDS)
        try:
            tokens = self._actors.get(ids)
        except TypeError:  # an unhashable value: no cache for this one
            tokens, ids = None, None
        if tokens is None:
            tokens = self._actor_tokens(conn, actor)
            replaced = [value for field, value in tokens.items() if value is not actor[field]]
            pairs = {(a, b) for a in replaced for b in replaced if a != b}
            committed = all(key in self._known for key in self._actor_keys(actor))
            if ids is not None and committed and pairs <= self._links:
                self._actors[ids] = tokens  # committed subjects and links only
        rest = {key: value for key, value in actor.items() if key not in _ACTOR_NAMES}
        new: dict[str, Any] = self._walk(conn, rest)
        if new is rest:
            new = dict(rest)
        new.update(tokens)
        return new

    def _actor_tokens(self, conn: Connection, actor: dict[str, Any]) -> dict[str, Any]:
        """The actor's identity fields as tokens (links recorded)."""
        out: dict[str, Any] = {}
        for field, kind in ACTOR_FIELDS:
            if field not in actor:
                continue
            value = actor[field]
            out[field] = (self.token(conn, kind, value)
                          if isinstance(value, str) and _is_identity(value) else value)  # fmt: skip
        self._link(conn, [value for field, value in out.items()
                          if value is not actor[field]])  # fmt: skip
        return out

    @staticmethod
    def _actor_keys(actor: dict[str, Any]) -> list[tuple[str, str]]:
        return [(kind, normalized(kind, actor[field])) for field, kind in ACTOR_FIELDS
                if isinstance(actor.get(field), str) and _is_identity(actor[field])]  # fmt: skip

    def _walk(self, conn: Connection, value: Any) -> Any:
        """``value`` with identities in its strings replaced: the same object when nothing
        changed (no copy, no call per plain string: this runs for every event)."""
        kind = type(value)
        if kind is str:
            return self._text(conn, value) if "@" in value else value
        if kind is dict:
            changed: dict[str, Any] | None = None
            for key, item in value.items():
                inner = type(item)
                if inner is str:
                    if "@" not in item:
                        continue
                    new = self._text(conn, item)
                elif inner is dict or inner is list:
                    new = self._walk(conn, item)
                else:
                    continue
                if new is not item:
                    changed = dict(value) if changed is None else changed
                    changed[key] = new
            return value if changed is None else changed
        if kind is list:
            items = [self._walk(conn, item) for item in value]
            return value if all(a is b for a, b in zip(items, value, strict=True)) else items
        return value

    def _text(self, conn: Connection, text: str) -> str:
        def named(match: re.Match[str]) -> str:
            name, email = match.group(1), match.group(2)
            pair = [self.token(conn, "name", name), self.token(conn, "email", email)]
            self._link(conn, pair)
            return f"{pair[0]} <{pair[1]}>"

        text = NAMED_EMAIL.sub(named, text)
        return EMAIL.sub(lambda match: self.token(conn, "email", match.group(0)), text)

    def token(self, conn: Connection, kind: str, value: str) -> str:
        """The token of identity ``value`` of ``kind``, created (key, sealed copy) if new."""
        cache_key = (kind, normalized(kind, value))
        found = self._known.get(cache_key) or self._pending.get(cache_key)
        if found is not None:
            return found
        if self._index_key is None:
            self._index_key = _index_key(conn)
        index = blind_index(self._index_key, kind, value)
        if conn.dialect.name != "postgresql":
            self._pending[cache_key] = _find_or_create(conn, kind, value.strip(), index)
            return self._pending[cache_key]
        with _outside(conn) as side:
            self._known[cache_key] = _find_or_create(side, kind, value.strip(), index)
        return self._known[cache_key]

    def _link(self, conn: Connection, tokens: list[str]) -> None:
        pairs = {(a, b) for a in tokens for b in tokens if a != b}
        new = pairs - self._links - self._pending_links
        if not new:
            return
        rows = [{"pseudonym": a, "linked": b} for a, b in sorted(new)]
        if conn.dialect.name != "postgresql":
            conn.execute(_insert(conn, subject_links).on_conflict_do_nothing(), rows)
            self._pending_links.update(new)
            return
        with _outside(conn) as side:
            side.execute(_insert(side, subject_links).on_conflict_do_nothing(), rows)
        self._links.update(new)


@contextlib.contextmanager
def _outside(conn: Connection) -> Iterator[Connection]:
    """A connection of ``conn``'s engine in autocommit (PostgreSQL): subjects are created
    and committed there at once, so writers of different chains never wait for each
    other's transactions (a subject made for an append that then fails is kept, unused)."""
    with conn.engine.connect() as side:
        yield side.execution_options(isolation_level="AUTOCOMMIT")


def _find_or_create(conn: Connection, kind: str, clear: str, index: str) -> str:
    token = conn.scalar(select(subject_keys.c.pseudonym).where(
        subject_keys.c.blind_index == index))  # fmt: skip
    return str(token) if token is not None else _create(conn, kind, clear, index)


def _is_identity(value: str) -> bool:
    value = value.strip()
    return bool(value) and _ANON.fullmatch(value) is None and not is_token(value)


def _create(conn: Connection, kind: str, clear: str, index: str) -> str:
    """Insert-or-select the subject whose blind index is ``index``; its token."""
    token = PREFIX + os.urandom(8).hex()
    key = os.urandom(32)
    inserted = conn.execute(
        _insert(conn, subject_keys)
        .values(pseudonym=token, blind_index=index, key=key)
        .on_conflict_do_nothing(index_elements=["blind_index"])
        .returning(subject_keys.c.pseudonym)
    ).first()
    if inserted is None:  # another writer made it first (PostgreSQL waited for its commit)
        return str(conn.scalar(select(subject_keys.c.pseudonym).where(
            subject_keys.c.blind_index == index)))  # fmt: skip
    conn.execute(subjects.insert().values(
        pseudonym=token, kind=kind, sealed=_seal(key, token, clear),
        created_at=datetime.now(UTC), forgotten_at=None,
    ))  # fmt: skip
    return token


# --- the readers' half ---------------------------------------------------------------------


class Revealer:
    """Shows stored tokens as identities (or as forgotten); one per read, caching lookups."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._shown: dict[str, str | None] = {}
        self._escapes: dict[str, str] = {}  # token -> its JSON-escaped replacement

    def body(self, text: str) -> str:
        """``text`` (a stored body, JSON) with every known token replaced (JSON-escaped)."""
        if PREFIX not in text:
            return text
        return TOKEN.sub(self._escaped, text)

    def value(self, value: str | None) -> str | None:
        """One stored value (a column: ``stats --by actor``) as readers show it."""
        if value is None or not is_token(value):
            return value
        self._load([value])
        return self._shown.get(value) or value

    def _escaped(self, match: re.Match[str]) -> str:
        token = match.group(0)
        start = match.start()
        if start and (match.string[start - 1].isalnum() or match.string[start - 1] == "_"):
            return token  # inside a longer word: not a token
        escaped = self._escapes.get(token)
        if escaped is None:
            if token not in self._shown:
                self._load([token])
            shown = self._shown[token]
            escaped = token if shown is None else json.dumps(shown, ensure_ascii=False)[1:-1]
            self._escapes[token] = escaped
        return escaped

    def _load(self, tokens: Iterable[str]) -> None:
        missing = {token for token in tokens if token not in self._shown}
        if not missing:
            return
        query = (
            select(subjects.c.pseudonym, subjects.c.sealed, subject_keys.c.key)
            .select_from(subjects.outerjoin(
                subject_keys, subject_keys.c.pseudonym == subjects.c.pseudonym))
            .where(subjects.c.pseudonym.in_(sorted(missing)))
        )  # fmt: skip
        for token, sealed, key in self._conn.execute(query):
            self._shown[token] = (
                forgotten_label(token) if key is None else _open(bytes(key), token, bytes(sealed))
            )
        for token in missing:
            self._shown.setdefault(token, None)  # not a subject (text that looks like one)


def reveal_bodies(conn: Connection, bodies: Iterable[str]) -> Iterator[str]:
    """``bodies`` with their tokens revealed (one :class:`Revealer` for the whole stream)."""
    revealer = Revealer(conn)
    for body in bodies:
        yield revealer.body(body)


# --- finding subjects ----------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """One stored subject as ``forget`` and the gdpr report show it."""

    token: str
    kind: str
    identity: str | None  # None: forgotten
    forgotten_at: datetime | None


def _live(conn: Connection, where: Any = None) -> Iterator[tuple[str, str, str]]:
    """(token, kind, clear identity) of every subject whose key exists (matching ``where``)."""
    query = select(subjects.c.pseudonym, subjects.c.kind, subjects.c.sealed,
                   subject_keys.c.key).join(
        subject_keys, subject_keys.c.pseudonym == subjects.c.pseudonym)  # fmt: skip
    if where is not None:
        query = query.where(where)
    for token, kind, sealed, key in conn.execute(query):
        yield token, kind, _open(bytes(key), token, bytes(sealed))


def actor_pseudonyms(conn: Connection, pattern: str) -> tuple[str, ...]:
    """Tokens of the live subjects whose identity matches ``pattern`` (exact or fnmatch glob):
    an exact value through the blind index, a glob by opening the live subjects."""
    if is_token(pattern) or _ANON.fullmatch(pattern):
        return ()
    if not set("*?[").intersection(pattern):
        key = _index_key(conn)
        indexes = [blind_index(key, kind, pattern) for kind in KINDS]
        query = select(subject_keys.c.pseudonym).where(subject_keys.c.blind_index.in_(indexes))
        return tuple(sorted(str(token) for token in conn.scalars(query)))
    return tuple(sorted(token for token, _, clear in _live(conn)
                        if fnmatch.fnmatchcase(clear, pattern)))  # fmt: skip


def find(conn: Connection, identity: str) -> list[Subject]:
    """The live subjects whose identity is ``identity`` (any kind; or a token); UsageError for
    a glob, SubjectAlreadyForgotten / SubjectNotFound when there are none."""
    if set("*?[").intersection(identity):
        raise UsageError(
            f"--subject {identity!r}: a subject is one exact identity, not a pattern",
            "give the exact email, git name or OS user, e.g. --subject alice@example.com",
        )
    if is_token(identity):
        where = subjects.c.pseudonym == identity
    else:
        where = subjects.c.pseudonym.in_(actor_pseudonyms(conn, identity))
    found = [Subject(token, kind, clear, None) for token, kind, clear in _live(conn, where)]
    if found:
        return found
    if is_token(identity):
        row = conn.execute(select(subjects.c.forgotten_at).where(where)).first()
        if row is not None and row.forgotten_at is not None:
            raise SubjectAlreadyForgotten(
                f"subject {identity} is forgotten already (since {row.forgotten_at:%Y-%m-%d})",
                "nothing to do; readers show it as 'forgotten subject'",
            )
    raise SubjectNotFound(
        f"no subject {identity!r} in the store (or it was forgotten already: a forgotten "
        "identity cannot be looked up any more)",
        "give the exact email, git name or OS user as recorded (emails: any case), "
        "e.g. `gitaudit forget --subject alice@example.com`; `gitaudit log --actor "
        "'*alice*'` lists what is recorded; to check a forgotten one, pass its token "
        "(subject:<hex>) as shown by `gitaudit log`",
    )


def linked(conn: Connection, tokens: Iterable[str]) -> set[str]:
    """Tokens linked (seen in one actor, or as ``Name <email>``) to any of ``tokens``."""
    chosen = list(tokens)
    query = select(subject_links.c.linked).where(subject_links.c.pseudonym.in_(chosen))
    return set(conn.scalars(query)) - set(chosen)


@dataclass(frozen=True)
class ForgetPlan:
    """What ``forget`` will do: the subjects forgotten, and linked ones kept (shared)."""

    subjects: tuple[Subject, ...]
    kept: tuple[Subject, ...]  # linked to the subject, but also to other subjects

    @property
    def tokens(self) -> tuple[str, ...]:
        """The tokens forgotten."""
        return tuple(subject.token for subject in self.subjects)


def plan(conn: Connection, identity: str, *, follow_links: bool = True) -> ForgetPlan:
    """The subjects ``forget --subject identity`` forgets: those with that identity, and
    (``follow_links``) the identities linked to them and to nothing else."""
    named = find(conn, identity)
    chosen = {subject.token for subject in named}
    candidates = linked(conn, chosen) if follow_links else set()
    closure = chosen | candidates
    extra: list[str] = []
    kept: list[str] = []
    for token in sorted(candidates):
        target = extra if linked(conn, [token]) <= closure else kept
        target.append(token)
    live = {token: (kind, clear) for token, kind, clear in _live(
        conn, subjects.c.pseudonym.in_([*extra, *kept]))} if candidates else {}  # fmt: skip

    def subject(token: str) -> Subject:
        kind, clear = live[token]
        return Subject(token, kind, clear, None)

    return ForgetPlan(
        (*named, *(subject(token) for token in extra if token in live)),
        tuple(subject(token) for token in kept if token in live),
    )


@dataclass(frozen=True)
class ForgetPreview:
    """What ``forget`` is about to do, shown before confirming."""

    plan: ForgetPlan
    events: int  # events holding any of the tokens (actor fields or free text)
    clear_events: int  # events stored before revision 0007 naming an identity in clear


def preview(conn: Connection, identity: str, *, follow_links: bool = True) -> ForgetPreview:
    """The plan for ``identity`` and how many events it concerns (see :class:`ForgetPreview`)."""
    from gitaudit.store.reader import EventFilter, count_matching  # the reader imports us

    chosen = plan(conn, identity, follow_links=follow_links)
    grep = token_grep(conn.dialect.name, chosen.tokens)
    count = count_matching(conn, EventFilter(grep=grep, grep_raw=True))
    clears = [subject.identity for subject in chosen.subjects if subject.identity]
    clear = select(func.count()).select_from(events).where(or_(
        events.c.actor_user.in_(clears), events.c.actor_git_name.in_(clears),
        events.c.actor_git_email.in_(clears)))  # fmt: skip
    return ForgetPreview(chosen, count, int(conn.scalar(clear) or 0))


def forget(conn: Connection, shown: ForgetPreview, identity: str, follow_links: bool) -> int:
    """In the caller's write transaction: forget what ``shown`` listed (the plan is made
    again and must not have changed); delete the key rows and links, mark the subjects
    forgotten. How many key rows were deleted."""
    again = plan(conn, identity, follow_links=follow_links)
    if set(again.tokens) != set(shown.plan.tokens):
        raise GitauditError(
            f"the subjects linked to {identity!r} changed while you were asked; "
            "nothing was forgotten",
            "run the command again and check the new list",
        )
    chosen = sorted(again.tokens)
    if conn.dialect.name == "sqlite":  # zero the deleted key bytes in the file's pages
        conn.exec_driver_sql("PRAGMA secure_delete = ON")
    deleted = conn.execute(delete(subject_keys).where(
        subject_keys.c.pseudonym.in_(chosen))).rowcount  # fmt: skip
    conn.execute(delete(subject_links).where(or_(
        subject_links.c.pseudonym.in_(chosen), subject_links.c.linked.in_(chosen))))  # fmt: skip
    conn.execute(update(subjects).where(
        subjects.c.pseudonym.in_(chosen), subjects.c.forgotten_at.is_(None),
    ).values(forgotten_at=datetime.now(UTC)))  # fmt: skip
    return int(deleted or 0)


def scrub(conn: Connection) -> bool:
    """After ``forget`` committed, push the deleted key bytes out of the database files:
    SQLite checkpoints and truncates its WAL; PostgreSQL rewrites the two tables
    (``VACUUM FULL``; ``conn`` in autocommit). False when the engine could not do it now
    (a reader holding the WAL, no ownership of the tables)."""
    try:
        if conn.dialect.name == "sqlite":
            busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
            return busy is None or int(busy[0]) == 0
        conn.exec_driver_sql("VACUUM FULL subject_keys, subject_links")
    except DBAPIError:
        return False
    return True


def token_grep(dialect: str, tokens: Iterable[str]) -> str:
    """The ``--grep-syntax`` text (in ``dialect``'s syntax) matching the events that hold
    any of ``tokens`` anywhere: the full-text index holds each token's hex as one word."""
    hexes = sorted(token[len(PREFIX):] for token in tokens)
    if dialect == "sqlite":
        return " OR ".join(f'"{hexed}"' for hexed in hexes)
    return " | ".join(hexes)
