"""Synthetic redaction corpus: every credential kind in every git context, and look-alikes.

Each credential kind is built from its public format (prefix, length, alphabet,
and the checksum where the format has one: the CRC32 of GitHub and npm tokens,
the fixed signatures of the 84-character Azure DevOps PAT), put into one of a
few *snippets* (the line or lines where such a secret really shows up: a
``.env`` line, a ``.netrc`` entry, a ``docker/config.json``, a ``curl`` command)
and the snippet into a git *context* (commit message, argv, remote URL, push
output, conflict diff, an LLM prompt quoting code, JSON event details). The
negatives are things that look like secrets and are not: object ids, digests,
signatures and public keys, UUIDs outside any credential context, placeholders,
code that handles secrets without holding one, empty values.

Everything is drawn from ``random.Random(seed)``, so the corpus is the same on
every run; nothing realistic is stored in the repository (secret scanners stay
quiet). :func:`score` measures a redaction function on it: per kind, recall
(positives of which no 12-character piece of any secret survives) and the
false-positive rate (negatives whose text changed at all).

Decisions the negatives encode: well-known dummy values (``changeme``,
``xxx``, ``your-token-here``, ``<password>``) are placeholders, not secrets:
they are public, and keeping them shows that a default was left in place. PGP
and SSH signatures, public keys and certificates are public, also under a
sensitive name (``"signature": "-----BEGIN PGP SIGNATURE-----..."``).
"""

from __future__ import annotations

import base64
import json
import random
import shlex
import string
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tests.corpus.fakes import ALNUM, B64, B64URL, DIGITS, HEX, LOWER, UPPER, _jwt, _pem_body, _s

SEED = 20261204
PER_KIND = 40  # records per credential kind
PER_NEGATIVE_KIND = 60
LEAK_WINDOW = 12  # a secret leaks if any piece of this many characters survives

PASSWORD_CHARS = ALNUM + "!%*_-.+~^"
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


@dataclass(frozen=True)
class Sample:
    """One record: ``secrets`` are what must not survive (empty for a negative)."""

    kind: str
    context: str
    text: str
    secrets: tuple[str, ...] = ()


Snippet = tuple[str, tuple[str, ...]]  # text, secrets in it
Maker = Callable[[random.Random], Snippet]


# --- credential formats ------------------------------------------------------------------


def _base62(number: int, width: int) -> str:
    out = ""
    while number:
        number, digit = divmod(number, 62)
        out = BASE62[digit] + out
    return out.rjust(width, "0")


def _crc_token(rng: random.Random, prefix: str) -> str:
    """GitHub (ghp_, gho_, ghu_, ghs_, ghr_) and npm (npm_) tokens: 30 random + CRC32 base62."""
    body = _s(rng, ALNUM, 30)
    return prefix + body + _base62(zlib.crc32(body.encode()), 6)


def _password(rng: random.Random) -> str:
    """A typed password: a letter, then letters, digits and symbols, at least one digit."""
    size = rng.randint(10, 20)
    return rng.choice(string.ascii_letters) + _s(rng, PASSWORD_CHARS, size - 2) + rng.choice(DIGITS)


def _ado_legacy(rng: random.Random) -> str:
    """Azure DevOps PAT before 2024: 52 characters, lower-case base32 (a-z, 2-7)."""
    return _s(rng, LOWER + "234567", 52)


def _ado_new(rng: random.Random) -> str:
    """Azure DevOps PAT since 2024: 84 characters, signatures JQQJ99 at 52 and AZDO at 76."""
    return (
        _s(rng, ALNUM, 52) + "JQQJ99" + rng.choice("ABCD") + _s(rng, UPPER + DIGITS, 17)
        + "AZDO" + _s(rng, ALNUM, 4)
    )  # fmt: skip


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _user(rng: random.Random) -> str:
    return rng.choice(["deploy", "ci-bot", "jane", "build", "svc_release", "admin", "robot$ci"])


def _host(rng: random.Random) -> str:
    return rng.choice(
        ["git.example.com", "github.com", "gitlab.example.org", "bitbucket.org", "scm.corp.local"]
    )


def _org(rng: random.Random) -> str:
    return rng.choice(["contoso", "fabrikam", "acme-corp", "northwind"])


def _pick(rng: random.Random, *forms: Callable[[], Snippet]) -> Snippet:
    return rng.choice(forms)()


def _token_snippets(rng: random.Random, token: str, env: str) -> Snippet:
    """The places a prefixed provider token shows up."""
    one = (token,)
    return _pick(
        rng,
        lambda: (f"export {env}={token}", one),
        lambda: (f'{env}="{token}"', one),
        lambda: (f'"{env.lower()}": "{token}"', one),
        lambda: (f"curl -H 'Authorization: Bearer {token}' https://api.example.com/v1/me", one),
        lambda: (f"accidentally pasted {token} into the build log, rotated it", one),
        lambda: (f"key = {token}", one),
        lambda: (f"  - {env}={token}", one),
        lambda: (f"client = Client(api_key='{token}')", one),
    )


def _github(rng: random.Random) -> Snippet:
    token = _crc_token(rng, rng.choice(["ghp_", "gho_"]))
    return _pick(
        rng,
        lambda: (f"git clone https://{token}@github.com/org/repo.git", (token,)),
        lambda: (f"echo {token} | gh auth login --with-token", (token,)),
        lambda: (f"https://x-access-token:{token}@github.com/org/repo.git", (token,)),
        lambda: _token_snippets(rng, token, "GITHUB_TOKEN"),
    )


def _github_fine(rng: random.Random) -> Snippet:
    token = "github_pat_" + _s(rng, ALNUM, 22) + "_" + _s(rng, ALNUM, 59)
    return _token_snippets(rng, token, "GH_PAT")


def _github_app(rng: random.Random) -> Snippet:
    token = _crc_token(rng, rng.choice(["ghs_", "ghu_", "ghr_"]))
    return _pick(
        rng,
        lambda: (f"https://x-access-token:{token}@github.com/org/repo.git", (token,)),
        lambda: (f'{{"token": "{token}", "expires_at": "2026-12-04T12:00:00Z"}}', (token,)),
        lambda: _token_snippets(rng, token, "GH_APP_TOKEN"),
    )


def _gitlab(rng: random.Random) -> Snippet:
    token = rng.choice(
        [
            "glpat-" + _s(rng, ALNUM + "_-", 20),
            "glpat-" + _s(rng, ALNUM, 36) + ".01" + _s(rng, LOWER + DIGITS, 7),
            "gldt-" + _s(rng, ALNUM + "_-", 20),
            "glrt-" + _s(rng, ALNUM + "_-", 20),
            "glcbt-" + _s(rng, ALNUM, 2) + "_" + _s(rng, ALNUM + "_-", 20),
        ]
    )
    return _pick(
        rng,
        lambda: (f"git push https://oauth2:{token}@gitlab.example.com/g/p.git HEAD:main", (token,)),
        lambda: (f"PRIVATE-TOKEN: {token}", (token,)),
        lambda: _token_snippets(rng, token, "GITLAB_TOKEN"),
    )


def _aws(rng: random.Random) -> Snippet:
    key_id = rng.choice(["AKIA", "ASIA"]) + _s(rng, UPPER + "234567", 16)
    secret = _s(rng, ALNUM + "/+", 40)
    both = (key_id, secret)
    return _pick(
        rng,
        lambda: (
            f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}", both
        ),
        lambda: (f"AWS_ACCESS_KEY_ID={key_id} AWS_SECRET_ACCESS_KEY={secret} aws s3 ls", both),
        lambda: (f'{{"AccessKeyId": "{key_id}", "SecretAccessKey": "{secret}"}}', both),
        lambda: (f"aws configure set aws_access_key_id {key_id}", (key_id,)),
    )


def _slack(rng: random.Random) -> Snippet:
    token = rng.choice(
        [
            f"xoxb-{_s(rng, DIGITS, 12)}-{_s(rng, DIGITS, 13)}-{_s(rng, ALNUM, 24)}",
            f"xoxp-{_s(rng, DIGITS, 12)}-{_s(rng, DIGITS, 12)}-{_s(rng, DIGITS, 13)}-"
            + _s(rng, HEX, 32),
        ]
    )
    hook = f"T{_s(rng, UPPER + DIGITS, 8)}/B{_s(rng, UPPER + DIGITS, 10)}/{_s(rng, ALNUM, 24)}"
    return _pick(
        rng,
        lambda: _token_snippets(rng, token, "SLACK_BOT_TOKEN"),
        lambda: (f"curl -X POST https://hooks.slack.com/services/{hook} -d @msg.json", (hook,)),
    )


def _stripe(rng: random.Random) -> Snippet:
    token = rng.choice(
        [
            "sk_live_" + _s(rng, ALNUM, 24),
            "sk_live_" + _s(rng, ALNUM, 99),
            "rk_live_" + _s(rng, ALNUM, 24),
            "sk_test_" + _s(rng, ALNUM, 99),
            "whsec_" + _s(rng, ALNUM, 32),
        ]
    )
    return _token_snippets(rng, token, "STRIPE_SECRET_KEY")


def _google(rng: random.Random) -> Snippet:
    return _token_snippets(rng, "AIza" + _s(rng, ALNUM + "_-", 35), "GOOGLE_MAPS_KEY")


def _npm(rng: random.Random) -> Snippet:
    token = _crc_token(rng, "npm_")
    return _pick(
        rng,
        lambda: (f"//registry.npmjs.org/:_authToken={token}", (token,)),
        lambda: _token_snippets(rng, token, "NPM_TOKEN"),
    )


def _pypi(rng: random.Random) -> Snippet:
    token = "pypi-AgEIcHlwaS5vcmc" + _s(rng, B64URL, rng.randint(60, 160))
    return _pick(
        rng,
        lambda: (f"[pypi]\nusername = __token__\npassword = {token}", (token,)),
        lambda: (f"twine upload -u __token__ -p {token} dist/*", (token,)),
        lambda: _token_snippets(rng, token, "TWINE_PASSWORD"),
    )


def _ai(rng: random.Random) -> Snippet:
    token = rng.choice(
        [
            "sk-ant-api03-" + _s(rng, ALNUM + "_-", 93) + "AA",
            "sk-proj-" + _s(rng, ALNUM + "_-", 74) + "T3BlbkFJ" + _s(rng, ALNUM + "_-", 74),
            "sk-" + _s(rng, ALNUM, 20) + "T3BlbkFJ" + _s(rng, ALNUM, 20),
        ]
    )
    return _token_snippets(rng, token, "ANTHROPIC_API_KEY")


def _jwt_kind(rng: random.Random) -> Snippet:
    token = _jwt(rng)
    return _pick(
        rng,
        lambda: (f"Cookie: session={token}; Path=/", (token,)),
        lambda: (f"id_token={token}", (token,)),
        lambda: _token_snippets(rng, token, "ID_TOKEN"),
    )


def _private_key(rng: random.Random) -> Snippet:
    label = rng.choice(["RSA PRIVATE KEY", "OPENSSH PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY"])
    body = _pem_body(rng)
    block = f"-----BEGIN {label}-----\n{body}\n-----END {label}-----"
    lines = tuple(line for line in body.split("\n") if len(line) >= LEAK_WINDOW)
    return _pick(
        rng,
        lambda: (block, lines),
        lambda: ("deploy_key: |\n  " + block.replace("\n", "\n  "), lines),
    )


def _url(rng: random.Random) -> Snippet:
    password = _password(rng)
    one = (password,)
    user, host = _user(rng), _host(rng)
    return _pick(
        rng,
        lambda: (f"git remote add origin https://{user}:{password}@{host}/org/repo.git", one),
        lambda: (f"fatal: unable to access 'https://{user}:{password}@{host}/r.git/': 403", one),
        lambda: (f"DATABASE_URL=postgres://app:{password}@db.internal:5432/app", one),
        lambda: (f"url = https://{user}:{password}@{host}/org/repo.git", one),
    )


def _auth_header(rng: random.Random) -> Snippet:
    opaque = _s(rng, ALNUM, rng.randint(24, 48))
    basic = _b64(f"{_user(rng)}:{_password(rng)}")
    return _pick(
        rng,
        lambda: (f"Authorization: Bearer {opaque}", (opaque,)),
        lambda: (f'curl -H "Authorization: Basic {basic}" https://ci.example.com/api', (basic,)),
        lambda: (f'git -c http.extraheader="AUTHORIZATION: bearer {opaque}" fetch', (opaque,)),
        lambda: (f"Proxy-Authorization: Basic {basic}", (basic,)),
        lambda: (f'{{"headers": {{"Authorization": "Bearer {opaque}"}}}}', (opaque,)),
    )


def _ado(rng: random.Random, pat: str) -> Snippet:
    one = (pat,)
    org = _org(rng)
    basic = _b64(":" + pat)
    return _pick(
        rng,
        lambda: (f"AZURE_DEVOPS_EXT_PAT={pat}", one),
        lambda: (f"export AZURE_DEVOPS_EXT_PAT='{pat}'", one),
        lambda: (f"$env:AZURE_DEVOPS_EXT_PAT = '{pat}'", one),
        lambda: (f"echo {pat} | az devops login --organization https://dev.azure.com/{org}", one),
        lambda: (f"git clone https://{org}:{pat}@dev.azure.com/{org}/web/_git/web", one),
        lambda: (f"git clone https://{pat}@{org}.visualstudio.com/web/_git/web", one),
        lambda: (f'git -c http.extraheader="AUTHORIZATION: Basic {basic}" clone', (basic,)),
        lambda: (f"SYSTEM_ACCESSTOKEN={pat}", one),
        lambda: (f"ADO PAT for the release pipeline: {pat}", one),
        lambda: (f'"azureDevOpsPat": "{pat}"', one),
        lambda: (f"pat: {pat}", one),
        lambda: (f"{pat}", one),
    )


def _ado_legacy_kind(rng: random.Random) -> Snippet:
    return _ado(rng, _ado_legacy(rng))


def _ado_new_kind(rng: random.Random) -> Snippet:
    return _ado(rng, _ado_new(rng))


def _docker(rng: random.Random) -> Snippet:
    registry = rng.choice(["https://index.docker.io/v1/", "ghcr.io", "registry.example.com:5000"])
    auth = _b64(f"{_user(rng)}:{rng.choice([_password(rng), _crc_token(rng, 'ghp_')])}")
    pretty = json.dumps({"auths": {registry: {"auth": auth}}}, indent=rng.choice([2, 4, "\t"]))
    compact = json.dumps({"auths": {registry: {"auth": auth}}}, separators=(",", ":"))
    dockerconfig = _b64(compact)
    return _pick(
        rng,
        lambda: (pretty, (auth,)),
        lambda: (compact, (auth,)),
        lambda: (f"DOCKER_AUTH_CONFIG={compact}", (auth,)),
        lambda: (f"DOCKER_AUTH_CONFIG='{compact}'", (auth,)),
        lambda: (f"echo '{compact}' > ~/.docker/config.json", (auth,)),
        lambda: (f"data:\n  .dockerconfigjson: {dockerconfig}", (dockerconfig,)),
        lambda: (f'{{"auths": {{"{registry}": {{"identitytoken": "{auth}"}}}}}}', (auth,)),
        lambda: (f"auth: {auth}", (auth,)),
    )


def _heroku(rng: random.Random) -> Snippet:
    key = rng.choice(["HRKU-" + _uuid(rng), "HRKU-AA" + _s(rng, ALNUM + "_-", 58), _uuid(rng)])
    one = (key,)
    return _pick(
        rng,
        lambda: (f"HEROKU_API_KEY={key}", one),
        lambda: (f"export HEROKU_API_KEY='{key}'", one),
        lambda: (f"machine api.heroku.com\n  login me@example.com\n  password {key}", one),
        lambda: (f"machine git.heroku.com login me@example.com password {key}", one),
        lambda: (f"git push https://heroku:{key}@git.heroku.com/shop.git main", one),
        lambda: (f"heroku_api_key: {key}", one),
        lambda: (f"curl -n -H 'Authorization: Bearer {key}' https://api.heroku.com/apps", one),
        lambda: (f'{{"heroku": {{"api_key": "{key}"}}}}', one),
    )


def _twilio(rng: random.Random) -> Snippet:
    sid = "AC" + _s(rng, HEX, 32)
    auth_token = _s(rng, HEX, 32)
    api_key = "SK" + _s(rng, HEX, 32)
    api_secret = _s(rng, ALNUM, 32)
    token, pair = (auth_token,), (api_key, api_secret)
    return _pick(
        rng,
        lambda: (f"TWILIO_ACCOUNT_SID={sid}\nTWILIO_AUTH_TOKEN={auth_token}", token),
        lambda: (f'client = Client("{sid}", "{auth_token}")', token),
        lambda: (f"client = Client('{api_key}', '{api_secret}', '{sid}')", pair),
        lambda: (f"curl -u {sid}:{auth_token} https://api.twilio.com/2010-04-01/Accounts", token),
        lambda: (f"twilio:\n  account_sid: {sid}\n  auth_token: {auth_token}", token),
        lambda: (f"TWILIO_API_KEY={api_key}\nTWILIO_API_SECRET={api_secret}", pair),
        lambda: (f"twilio sid {sid} token {auth_token}", token),
    )


def _netrc(rng: random.Random) -> Snippet:
    password = _password(rng)
    host = _host(rng)
    return _pick(
        rng,
        lambda: (f"machine {host} login {_user(rng)} password {password}", (password,)),
        lambda: (f"machine {host}\n    login {_user(rng)}\n    password {password}\n", (password,)),
        lambda: (f"machine {host} password {password} login {_user(rng)}", (password,)),
        lambda: (f"default login anonymous password {password}", (password,)),
    )


def _env_file(rng: random.Random) -> Snippet:
    password = _password(rng)
    name = rng.choice(
        ["DB_PASSWORD", "DB_PASS", "SMTP_PASS", "REDIS_PASSWORD", "APP_SECRET", "JWT_SECRET",
         "SESSION_SECRET", "MYSQL_ROOT_PASSWORD", "API_TOKEN", "ADMIN_PW", "SECRET_KEY_BASE",
         "CLIENT_SECRET", "ENCRYPTION_KEY", "MASTER_KEY", "WEBHOOK_SECRET", "PGPASSWORD"]
    )  # fmt: skip
    quote = rng.choice(["", '"', "'"])
    line = f"{name}={quote}{password}{quote}"
    return _pick(
        rng,
        lambda: (line, (password,)),
        lambda: (f"# local settings\nDEBUG=false\n{line}\nPORT=8080", (password,)),
        lambda: (f"export {line}", (password,)),
    )


def _commit_prose(rng: random.Random) -> Snippet:
    password = _password(rng)
    word = rng.choice(["password", "Password", "passwd", "secret", "token", "DB password"])
    return _pick(
        rng,
        lambda: (f"{word}: {password} (temporary, rotate after the demo)", (password,)),
        lambda: (f"The staging {word} is {password} until Friday.", (password,)),
        lambda: (f"use `password={password}` for local dev", (password,)),
        lambda: (f"new {word} = {password}", (password,)),
        lambda: (f"{word}: {password}", (password,)),
        lambda: (f"Set the admin {word} to {password} for QA", (password,)),
    )


def _shell(rng: random.Random) -> Snippet:
    password = _password(rng)
    user = _user(rng)
    return _pick(
        rng,
        lambda: (f"export DB_PASSWORD='{password}'", (password,)),
        lambda: (f"mysql -u root -p{password} shop < dump.sql", (password,)),
        lambda: (f"mysqldump -uroot -p'{password}' --all-databases", (password,)),
        lambda: (f"docker login -u {user} -p {password} registry.example.com", (password,)),
        lambda: (f"sshpass -p '{password}' ssh deploy@10.0.0.5", (password,)),
        lambda: (f'psql "host=db user=app password={password} dbname=app"', (password,)),
        lambda: (f"curl -u {user}:{password} https://nexus.example.com/repo", (password,)),
        lambda: (f"az login --service-principal -u {_uuid(rng)} -p {password}", (password,)),
        lambda: (f"./deploy.sh --db-password {password} --env prod", (password,)),
        lambda: (f"PGPASSWORD={password} pg_dump -h db app", (password,)),
    )


def _config(rng: random.Random) -> Snippet:
    password = _password(rng)
    return _pick(
        rng,
        lambda: (f"database:\n  user: app\n  password: {password}\n  host: db", (password,)),
        lambda: (f'[database]\nuser = "app"\npassword = "{password}"', (password,)),
        lambda: (f"[smtp]\nhost = mail.example.com\npass = {password}", (password,)),
        lambda: (f'{{"db": {{"user": "app", "password": "{password}"}}}}', (password,)),
        lambda: (f'<add key="DbPassword" value="{password}" />', (password,)),
        lambda: (f"spring.datasource.password={password}", (password,)),
        lambda: (f'client_secret: "{password}"', (password,)),
        lambda: (f"<password>{password}</password>", (password,)),
        lambda: (f"define( 'DB_PASSWORD', '{password}' );", (password,)),
        lambda: (f"- name: DB_PASSWORD\n  value: {password}", (password,)),
    )


#: Credential kind -> snippet maker.
CREDENTIALS: dict[str, Maker] = {
    "github-classic": _github,
    "github-fine-grained": _github_fine,
    "github-app": _github_app,
    "gitlab": _gitlab,
    "aws": _aws,
    "slack": _slack,
    "stripe": _stripe,
    "google-api": _google,
    "npm": _npm,
    "pypi": _pypi,
    "openai-anthropic": _ai,
    "jwt": _jwt_kind,
    "private-key": _private_key,
    "url-userinfo": _url,
    "auth-header": _auth_header,
    "azure-devops-pat-52": _ado_legacy_kind,
    "azure-devops-pat-84": _ado_new_kind,
    "docker-config-auth": _docker,
    "heroku": _heroku,
    "twilio": _twilio,
    "netrc": _netrc,
    "env-file": _env_file,
    "commit-message-assignment": _commit_prose,
    "shell": _shell,
    "config-file": _config,
}


# --- look-alikes -------------------------------------------------------------------------


def _sha(rng: random.Random, size: int = 40) -> str:
    return _s(rng, HEX, size)


def _object_ids(rng: random.Random) -> str:
    a, b = _sha(rng), _sha(rng)
    return rng.choice(
        [
            f"To https://github.com/org/repo.git\n   {a[:7]}..{b[:7]}  main -> main",
            f"commit {a}\nMerge: {a[:7]} {b[:7]}\nAuthor: Jane Doe <jane@example.com>",
            f"tree {a}\nparent {b}\nauthor Jane <jane@example.com> 1764849600 +0000",
            f"{a} refs/heads/main\n{b} refs/tags/v1.2.3",
            f"git rev-parse HEAD\n{a}",
            f"Change-Id: I{a}",
            f"{a[:12]} HEAD@{{0}}: commit: fix token refresh",
            f"index {a[:7]}..{b[:7]} 100644",
        ]
    )


def _digests(rng: random.Random) -> str:
    h = _sha(rng, 64)
    sri = base64.b64encode(rng.randbytes(64)).decode()
    h1 = base64.b64encode(rng.randbytes(32)).decode()
    return rng.choice(
        [
            f"docker pull ghcr.io/org/app@sha256:{h}",
            f'"integrity": "sha512-{sri}"',
            f"github.com/pkg/errors v0.9.1 h1:{h1}",
            f"Digest: sha256:{h}\nStatus: Downloaded newer image",
            f"{h}  dist/app.tar.gz",
            f"checksum = \"{h}\"",
            f'"etag": "{_sha(rng, 32)}"',
        ]
    )


def _armor(rng: random.Random, label: str, indent: str = "") -> str:
    body = _pem_body(rng, "\n" + indent)
    return f"-----BEGIN {label}-----\n{indent}\n{indent}{body}\n{indent}-----END {label}-----"


def _signatures(rng: random.Random) -> str:
    pgp = _armor(rng, "PGP SIGNATURE", " ")
    ssh = _armor(rng, "SSH SIGNATURE")
    return rng.choice(
        [
            f"tree {_sha(rng)}\nauthor Jane <j@example.com> 1764849600 +0000\ngpgsig {pgp}\n\nv1",
            ssh,
            json.dumps({"commit": _sha(rng), "signature": _armor(rng, "PGP SIGNATURE")}),
            'gpg: Signature made Thu 04 Dec 2026\ngpg: Good signature from "Jane <j@ex.com>"\n'
            "Primary key fingerprint: " + " ".join(_s(rng, HEX.upper(), 4) for _ in range(10)),
        ]
    )


def _public_keys(rng: random.Random) -> str:
    ed = "AAAAC3NzaC1lZDI1NTE5AAAAI" + _s(rng, B64, 43)
    rsa = "AAAAB3NzaC1yc2EAAAADAQABAAABgQ" + _s(rng, B64, 500)
    return rng.choice(
        [
            f"ssh-ed25519 {ed} jane@laptop",
            f"ssh-rsa {rsa} deploy@ci",
            f"github.com ssh-ed25519 {ed}",
            _armor(rng, "PUBLIC KEY"),
            _armor(rng, "PGP PUBLIC KEY BLOCK"),
            _armor(rng, "CERTIFICATE"),
            f"user.signingkey={_s(rng, UPPER[:6] + DIGITS, 16)}",
            json.dumps({"public_key": f"ssh-ed25519 {ed} ci@example.com",
                        "fingerprint": f"SHA256:{_s(rng, B64, 43)}"}),
            f"gpg.ssh.allowedsignersfile=~/.ssh/allowed_signers\njane@example.com ssh-ed25519 {ed}",
        ]
    )


def _uuids(rng: random.Random) -> str:
    u = _uuid(rng)
    return rng.choice(
        [
            f"X-Request-Id: {u}",
            json.dumps({"id": u, "session_id": _uuid(rng), "operation": "git.push"}),
            f"trace_id={u} span=push",
            f"heroku releases:info v42 --app {u}",
            f"correlation {u}: push rejected",
            f'{{"app": {{"id": "{u}", "name": "shop"}}}}',
            f"git-svn-id: https://svn.example.com/repo/trunk@1234 {u}",
        ]
    )


_PLACEHOLDERS = (
    "${GITHUB_TOKEN}", "$TOKEN", "***", "<redacted>", "{{ secrets.DEPLOY_KEY }}",
    "${{ secrets.GITHUB_TOKEN }}", "xxx", "xxxxxxxxxxxxxxxx", "changeme", "<password>",
    "your-token-here", "YOUR_API_KEY", "[REDACTED]", "********", "$(cat /run/secrets/db)",
    "%DB_PASSWORD%", "${DB_PASSWORD:-}", "{{ vault_db_password }}", "<your-password>",
    "****1234", "$password", "%(password)s", "{password}", "REPLACE_ME", "[MASKED]",
)  # fmt: skip


def _placeholders(rng: random.Random) -> str:
    value = rng.choice(_PLACEHOLDERS)
    form = rng.choice(
        [
            "password={v}", "export GITHUB_TOKEN={v}", "token: {v}", 'password: "{v}"',
            '"token": "{v}"', "DB_PASSWORD={v}", "--password {v}", "Authorization: Bearer {v}",
            "https://x-access-token:{v}@github.com/org/repo.git", "curl -u admin:{v} https://h/",
            "machine github.com login bot password {v}", "api_key = '{v}'",
            'git -c http.extraheader="AUTHORIZATION: bearer {v}" fetch',
            '<add key="DbPassword" value="{v}" />',
        ]
    )  # fmt: skip
    return form.format(v=value)


_CODE = (
    'password = os.environ["PW"]',
    "token = get_token()",
    "self.password = password",
    "conn = connect(host=host, user=user, password=password)",
    "api_key=api_key,",
    "    token: str",
    "  password: string;",
    "const token = req.headers.authorization;",
    "secret = settings.SECRET_KEY",
    'Password: os.Getenv("DB_PASSWORD"),',
    'let token = env::var("GITHUB_TOKEN")?;',
    "$password = $_POST['password'];",
    'headers = {"Authorization": f"Bearer {token}"}',
    'headers["Authorization"] = "Bearer " + token',
    "if password == confirm:",
    "password = await hashPassword(password)",
    "auth = (user, pw)",
    "token = token.strip()",
    "password: Optional[str] = None",
    "def login(user: str, password: str) -> bool:",
    'secret_key = config["SECRET_KEY"]',
    "token := r.Header.Get(\"X-Token\")",
    'String password = System.getenv("DB_PASSWORD");',
    "password = getpass.getpass()",
    "export GITHUB_TOKEN=$(gh auth token)",
    'token = os.getenv("TOKEN", "")',
    "PASSWORD = None",
    "creds = {'password': args.password}",
    "password=pw)",
    "client_secret: ClientSecret,",
    'setattr(self, "password", value)',
    'sensitive_fields = ["password", "token", "user"]',
    'api_key = os.environ.get("API_KEY", "")',
)


def _code(rng: random.Random) -> str:
    lines = rng.sample(_CODE, 3)
    return "\n".join(lines)


def _empty(rng: random.Random) -> str:
    return rng.choice(
        [
            "password=", 'password: ""', "token=''", '"token": null', "secret:\n  nested: 1",
            "PASSWORD=\nDEBUG=1", "password: ~", "export API_TOKEN=", "--password ''",
            '{"auth": {}, "token": ""}',
        ]
    )  # fmt: skip


def _details(rng: random.Random) -> str:
    return json.dumps(
        rng.choice(
            [
                {"usage": {"input_tokens": rng.randint(1, 9999), "output_tokens": 45},
                 "max_tokens": 4096, "model": "claude-sonnet-4"},
                {"operation": "git.fetch", "details": {"argv": ["git", "fetch", "--prune"],
                 "credential.helper": "store", "remote": "https://github.com/org/repo.git"}},
                {"auths": {"ghcr.io": {}}, "credsStore": "desktop",
                 "credHelpers": {"gcr.io": "gcloud"}},
                {"token_type": "bearer", "expires_in": 3600, "scope": "repo"},
                {"password_min_length": 12, "token_count": 3, "secret_name": "db-creds"},
                {"event": "auth", "auth_method": "ssh", "session_id": _uuid(rng)},
            ]
        )
    )  # fmt: skip


def _prose(rng: random.Random) -> str:
    return rng.choice(
        [
            "Fix token refresh: retry on 401",
            "password reset flow: send the email once",
            "Rotate the leaked secret (see incident 42)",
            "token: refresh it on 401",
            "The password is required for admin accounts.",
            "Set the password to expire after 90 days",
            "secret: rotated yearly, see the runbook",
            "Merge branch 'feature/api-key-rotation'",
            "docs: explain how the access token is stored",
            "auth: switch to the credential helper",
        ]
    )


def _base32ish(rng: random.Random) -> str:
    return rng.choice(
        [
            f"/nix/store/{_s(rng, '0123456789abcdfghijklmnpqrsvwxyz', 32)}-git-2.47.0",
            f"http://{_s(rng, LOWER + '234567', 56)}.onion/repo.git",
            f"ipfs://bafybei{_s(rng, LOWER + '234567', 52)}",
            "otpauth://totp/ACME:jane?issuer=ACME&algorithm=SHA1&digits=6&period=30",
            "refs/heads/" + "-".join(rng.choice(["fix", "login", "page"]) for _ in range(12)),
            f"ACK {_sha(rng, 32)}",
        ]
    )


#: Look-alike kind -> maker of a negative text.
LOOKALIKES: dict[str, Callable[[random.Random], str]] = {
    "object-id": _object_ids,
    "digest": _digests,
    "signature": _signatures,
    "public-key": _public_keys,
    "uuid": _uuids,
    "placeholder": _placeholders,
    "code": _code,
    "empty-value": _empty,
    "json-details": _details,
    "prose": _prose,
    "base32-hex-lookalike": _base32ish,
}


# --- git contexts ------------------------------------------------------------------------


def _commit_message(rng: random.Random, snippet: str) -> str:
    subject = rng.choice(["Update deploy settings", "WIP", "Fix CI", "config: staging"])
    return f"{subject}\n\n{snippet}\n\nSigned-off-by: Jane Doe <jane@example.com>"


def _argv(rng: random.Random, snippet: str) -> str:
    words = rng.choice([["git", "commit", "-m"], ["git", "notes", "-m"], ["git", "tag", "-m"]])
    return shlex.join([*words, snippet])


def _push_output(rng: random.Random, snippet: str) -> str:
    lines = "\n".join(f"remote: {line}" for line in snippet.split("\n"))
    a, b = _sha(rng, 7), _sha(rng, 7)
    return f"{lines}\nTo https://github.com/org/repo.git\n   {a}..{b}  main -> main"


def _conflict_diff(rng: random.Random, snippet: str, other: str | None = None) -> str:
    path = rng.choice(["config/settings.yml", "deploy.sh", ".env.example", "src/app.py"])
    lines = snippet.split("\n")
    ours = "\n".join([f"++{lines[0]}", *(f" +{line}" for line in lines[1:])])
    theirs = other if other is not None else rng.choice(_CODE)
    a, b = _sha(rng, 7), _sha(rng, 7)
    return (
        f"diff --cc {path}\nindex {a},{b}..0000000\n--- a/{path}\n+++ b/{path}\n"
        f"@@@ -1,5 -1,5 +1,9 @@@\n  # settings\n++<<<<<<< HEAD\n{ours}\n++=======\n"
        f"+ {theirs}\n++>>>>>>> feature/rotate\n  # end"
    )


def _llm_prompt(rng: random.Random, snippet: str) -> str:
    content = (
        "Resolve this merge conflict and explain the change:\n```\n"
        + _conflict_diff(rng, snippet) + "\n```"
    )
    return json.dumps(
        {"model": "claude-sonnet-4", "max_tokens": 1024,
         "messages": [{"role": "user", "content": content}]}
    )  # fmt: skip


def _json_details(rng: random.Random, snippet: str) -> str:
    return json.dumps(
        {"operation": "git.commit", "details": {"message": snippet, "files": 3},
         "result": {"exit_code": 0}}
    )  # fmt: skip


def _plain(rng: random.Random, snippet: str) -> str:
    return snippet


def _remote_url(rng: random.Random, snippet: str) -> str:
    return f"git remote -v\n{snippet}\norigin\thttps://github.com/org/repo.git (fetch)"


#: Context name -> wrapper of a snippet.
CONTEXTS: dict[str, Callable[[random.Random, str], str]] = {
    "commit-message": _commit_message,
    "argv": _argv,
    "push-output": _push_output,
    "conflict-diff": _conflict_diff,
    "llm-prompt": _llm_prompt,
    "json-details": _json_details,
    "plain": _plain,
    "remote-url": _remote_url,
}


# --- the corpus --------------------------------------------------------------------------


def positives(seed: int = SEED, per_kind: int = PER_KIND) -> list[Sample]:
    """``per_kind`` records of every credential kind, each in a context drawn at random."""
    rng = random.Random(f"positives:{seed}")
    out: list[Sample] = []
    contexts = sorted(CONTEXTS)
    for kind, make in CREDENTIALS.items():
        for index in range(per_kind):
            context = contexts[index % len(contexts)]
            snippet, secrets = make(rng)
            out.append(Sample(kind, context, CONTEXTS[context](rng, snippet), secrets))
    return out


def negatives(seed: int = SEED, per_kind: int = PER_NEGATIVE_KIND) -> list[Sample]:
    """``per_kind`` look-alikes of every kind, in contexts drawn at random."""
    rng = random.Random(f"negatives:{seed}")
    out: list[Sample] = []
    contexts = sorted(CONTEXTS)
    for kind, make in LOOKALIKES.items():
        for index in range(per_kind):
            context = contexts[index % len(contexts)]
            text = CONTEXTS[context](rng, make(rng))
            out.append(Sample(kind, context, text))
    # conflict diffs whose both sides are code: the records the filed defect saw altered
    for _ in range(per_kind):
        ours, theirs = rng.sample(_CODE, 2)
        out.append(Sample("conflict-code", "conflict-diff", _conflict_diff(rng, ours, theirs)))
    return out


def leaked(sample: Sample, redacted: str) -> bool:
    """Whether any piece of ``LEAK_WINDOW`` characters of any secret is still in ``redacted``."""
    for secret in sample.secrets:
        window = min(LEAK_WINDOW, len(secret))
        for start in range(len(secret) - window + 1):
            if secret[start : start + window] in redacted:
                return True
    return False


@dataclass
class KindScore:
    kind: str
    total: int = 0
    wrong: int = 0  # positives leaked / negatives altered
    examples: list[str] | None = None

    @property
    def rate(self) -> float:
        return self.wrong / self.total if self.total else 0.0


def score(
    redact: Callable[[str], str], samples: Iterable[Sample], keep_examples: int = 0
) -> dict[str, KindScore]:
    """Per kind: positives that leaked, or negatives that were altered."""
    scores: dict[str, KindScore] = {}
    for sample in samples:
        entry = scores.setdefault(sample.kind, KindScore(sample.kind, examples=[]))
        entry.total += 1
        out = redact(sample.text)
        bad = leaked(sample, out) if sample.secrets else out != sample.text
        if bad:
            entry.wrong += 1
            if entry.examples is not None and len(entry.examples) < keep_examples:
                entry.examples.append(f"[{sample.context}] {sample.text!r}\n  -> {out!r}")
    return scores


def totals(scores: dict[str, KindScore]) -> tuple[int, int]:
    """(records, wrong) over every kind."""
    return sum(s.total for s in scores.values()), sum(s.wrong for s in scores.values())
