"""One redaction of secrets for everything churnops prints or writes.

Secrets reach churnops through environment variables named in the configuration (webhook URLs,
SMTP and database passwords) and inside URLs given in the configuration or on the command line
(a Pushgateway, Redis or DVC remote with ``user:password@``, a ``?token=`` or ``?password=``
query). A secret can come back in pieces: a server echoes the path of a webhook URL in its
error, a library prints the URL without its scheme, a URL-encoded copy or the ``Authorization``
header built from the user info turns up in a message. So :func:`redact` removes

* every secret churnops was told about (:func:`remember`), and each fragment of it
  (:func:`fragments`, :func:`url_secrets`) - the user info, the user name and the password (of two
  characters or more), the Basic token they make, the values of credential query parameters of any
  length, other token-like query values and path segments - also URL-encoded;
* in any URL in the text: the user info, the values of query parameters that carry credentials
  (``token``, ``key``, ``sig``, ``password``, ``username``...) and every token-like query value
  and path segment (:func:`looks_like_token`).

A fragment shorter than :data:`MIN_ANYWHERE` characters (a password ``abc``) is replaced only
where it stands alone - not inside a longer word or number - so that it is hidden where it is
echoed without turning every ``abc`` of ``abcdef`` into ``***``; one of a single character
(:data:`MIN_HIDDEN`) is not replaced.

This module imports nothing from churnops; the CLI's output, the log, notifications, the
pipeline summary and error messages all go through :func:`redact`.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote, urlsplit

REDACTED = "***"

MIN_ANYWHERE = 4
"""Fragments at least this long are replaced wherever they occur; shorter ones only as a whole word."""

SENSITIVE_QUERY_KEYS = (
    r"[\w.\-]*(?:token|secret|passw|pwd|signature|credential|session|cookie|key|private|auth)[\w.\-]*|"
    r"sig|code|pass|user|username|x-amz-[\w\-]+|x-goog-[\w\-]+"
)
"""Query parameters that carry credentials: any name with one of these words (``private_token``,
``accessToken``, ``X-Api-Key``, ``access_key``, ``subscription-key``, ``client_secret``), and a few
short names on their own. (A harmless ``sort_key`` is hidden too: better than a key shown.)"""
_SENSITIVE_KEY = re.compile(rf"(?i)(?:{SENSITIVE_QUERY_KEYS})")
_QUERY = re.compile(
    # the value ends before punctuation that ends the sentence ("...?token=x: HTTP 400" keeps its colon)
    rf"(?i)([?&;](?:{SENSITIVE_QUERY_KEYS})=)[^&#;\s'\"<>]+?(?=[:,.)\]]*(?:[&#;\s'\"<>]|$))"
)
_USERINFO = re.compile(
    r"(?i)\b([a-z][a-z0-9+.\-]*://|[a-z][a-z0-9+.\-]+:/)[^\s'\"<>]*@(?=[^\s@/'\"<>]*(?:[/:?#\s'\"<>]|$))"
)
"""``user:password@`` after a scheme - with one slash too: a URL taken for a path comes back
from the path's normalisation as ``https:/user:password@host/...``; up to the last ``@`` before
the host (a password may hold ``/`` or ``@``)."""
_NETWORK_PATH = re.compile(r"(?<![\w:/])(//)[^/\s@'\"<>]+:[^/\s@'\"<>]*@")
"""``//user:password@host/...``: a URL without its scheme (a network path)."""
_HOST_USERINFO = re.compile(r"(?<![\w/.@%-])([A-Za-z0-9._%+-]+):(?!/)[^\s'\"<>]*@(?=[A-Za-z0-9.\-\[\]]+[:/])")
"""``user:password@host:`` or ``user:password@host/`` without ``//``: an scp-style location, or a
URL whose scheme lost its slashes (``https:user:password@host/x.csv``)."""
_URL = re.compile(r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s'\"<>]+")
_TOKEN_CHARACTERS = re.compile(r"[A-Za-z0-9_\-+=~%]+")


def credential_parameters(url: str) -> list[str]:
    """The names of the query parameters of ``url`` that carry credentials.

    >>> credential_parameters("https://r.example/r.html?page=2&X-Amz-Signature=abc&access_key=k")
    ['X-Amz-Signature', 'access_key']
    """
    query = urlsplit(url).query if "?" in url else ""
    names = [pair.partition("=")[0] for pair in re.split(r"[&;]", query) if pair]
    return [name for name in names if _SENSITIVE_KEY.fullmatch(unquote(name))]


def url_credential(url: str) -> str | None:
    """The credential ``url`` carries, as a message names it: ``user:password@`` (written with or
    without ``//``), or the first credential query parameter (``access_key=``); None without one.

    >>> url_credential("https://ci.example/7/"), url_credential("https:u:pw@ci.example/7")
    (None, 'user:password@')
    >>> url_credential("https://u:pw@ci.example/7"), url_credential("https://ci.example/7?page=1&access_key=k")
    ('user:password@', 'access_key=')
    """
    address = url.split("?")[0].split("#")[0]
    host = address.partition("://")[2] if "://" in address else address.partition(":")[2]
    if "@" in host.split("/")[0]:
        return "user:password@"
    found = credential_parameters(url)
    return f"{found[0]}=" if found else None


def looks_like_token(text: str) -> bool:
    """A path segment or query value that is probably a credential.

    The rule: 8 characters or more of a token's alphabet (letters, digits, ``_-+=~%``) mixing
    letters and digits, or 20 characters or more of that alphabet whatever they mix. Generated
    credentials - Slack's ``T0.../B0...`` ids, Teams workflow ids, API keys, UUIDs, hashes, a
    Pushgateway path token - are long and random, so they mix letters and digits (a random
    8-character base-62 token is all letters one time in four, a 20-character one one time in
    thirty: hence the second clause). The words people write in a path - ``metrics``, ``job``,
    ``gw``, ``services``, ``workflows``, ``api``, ``v1``, a date ``2024-06-01`` - are short, or
    letters only, or digits only, and stay readable; so do file names (``report-2.html``: a dot is
    not in a token's alphabet).

    >>> [looks_like_token(s) for s in ("metrics", "job", "gw", "services", "v1", "2024-06-01")]
    [False, False, False, False, False, False]
    >>> [looks_like_token(s) for s in ("B0123ABCD", "Abcdefghij12345", "x" * 24, "a1b2c3d4")]
    [True, True, True, True]
    """
    if not _TOKEN_CHARACTERS.fullmatch(text):
        return False
    mixed = any(c.isdigit() for c in text) and any(c.isalpha() for c in text)
    return len(text) >= 20 or (len(text) >= 8 and mixed)


OBJECT_STORAGE = frozenset({"s3", "gs", "gcs", "az", "abfs", "abfss", "wasb", "wasbs"})
"""URL schemes of object storage, whose paths are bucket keys: long names in them are kept."""


def _names_a_server(scheme: str, netloc: str) -> bool:
    """Whether a URL's path is a server's (where tokens live), not a local file's (``file:///``,
    ``sqlite:///``, ``unix:///``) nor an object key (``s3://bucket/key``): those name data."""
    return bool(netloc) and scheme.lower() not in OBJECT_STORAGE


_known: set[str] = set()
_words: set[str] = set()
"""Remembered pieces hidden only where they stand as a word (user names that are words)."""
_known_lock = threading.Lock()


def url_secrets(url: str) -> list[str]:
    """The parts of ``url`` that can be secret, whatever their length; none when it has none.

    The user info, its user name and password (as written and decoded), the ``Basic`` token an
    HTTP client makes of them; the values of credential query parameters (``password=``,
    ``username=``, ``token=``...) and every other query value or path segment that looks like a
    token; a fragment of 8 characters or more. The URL itself is not among them: an address
    without credentials stays readable - unless it cannot be taken apart, then it is all secret.

    >>> url_secrets("redis://:abc@cache:6379/0?password=pw&db=0")
    ['OmFiYw==', ':abc', 'abc', 'pw']
    >>> url_secrets("http://pushgateway:9091/metrics"), url_secrets("not a url")
    ([], [])
    """
    if "://" not in url:
        return []
    try:
        parts = urlsplit(url.strip())
        password = parts.password
        username = parts.username
    except ValueError:  # an unbalanced IPv6 bracket: where its password ends is unknown
        return [url.strip()]
    found: set[str] = set()
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo:
        found.add(userinfo)
        if password:
            found |= {password, unquote(password)}
        # a user name alone is hidden when it is the credential (no password: a token as the user)
        # or looks like one; an ordinary word ("report", "churn") hidden everywhere garbled the
        # messages around it ("monitoring_***.html"), and the user info as a whole stays hidden
        if username and (not password or looks_like_token(unquote(username))):
            found |= {username, unquote(username)}
        user, _, secret = userinfo.partition(":")
        basic = f"{unquote(user)}:{unquote(secret)}".encode()
        found.add(base64.b64encode(basic).decode("ascii"))
    for segment in parts.path.split("/") if _names_a_server(parts.scheme, parts.netloc) else ():
        if looks_like_token(segment) or looks_like_token(unquote(segment)):
            found.add(segment)
    for pair in re.split(r"[&;]", parts.query):
        key, _, value = pair.partition("=")
        if value and (_SENSITIVE_KEY.fullmatch(unquote(key)) or looks_like_token(unquote(value))):
            found |= {value, unquote(value)}
    if len(parts.fragment) >= 8:
        found.add(parts.fragment)
    return sorted((f for f in found if f), key=lambda f: (-len(f), f))


def fragments(secret: str) -> list[str]:
    """The secret and the pieces of it worth hiding on their own, longest first.

    >>> pieces = fragments("https://user:s3cretpass@hooks.example/services/T0/B1/abcdefgh12345678?token=zz99zz99")
    >>> [p for p in pieces if "://" not in p and "%" not in p]
    ['dXNlcjpzM2NyZXRwYXNz', 'abcdefgh12345678', 'user:s3cretpass', 's3cretpass', 'zz99zz99']
    """
    secret = secret.strip()
    if not secret:
        return []
    found = {secret, *url_secrets(secret)}
    found |= {quote(f, safe="") for f in found} | {unquote(f) for f in found}
    # as JSON writes text that is not ASCII ("s\u00e9cret"): a server may echo it so
    found |= {json.dumps(f)[1:-1] for f in found if not f.isascii()}
    return sorted((f for f in found if f), key=lambda f: (-len(f), f))


def remember(secrets: Iterable[str | None]) -> None:
    """Add secrets (e.g. the values of the environment variables the configuration names)."""
    with _known_lock:
        _known.update(s.strip() for s in secrets if s and s.strip())


PUBLIC_USERS = frozenset({"default"})
"""User names that are no one's: Redis's built-in user."""


def url_user_names(url: str) -> list[str]:
    """The user name of a URL that also holds a password, unless it looks like a token: hidden
    only as a whole word (:func:`remember_url`), so that a name that is an ordinary word
    ("report") does not garble the words it is part of ("monitoring_report.html"). Redis's
    built-in user ``default`` names no one and is left alone: hiding it garbled every
    "(default: ...)" of the messages.

    >>> url_user_names("redis://ruser:R3disPassw0rd@cache/0"), url_user_names("https://ghp0123456789abcdef@git/x")
    (['ruser'], [])
    >>> url_user_names("redis://default:R3disPassw0rd@cache/0")
    []
    """
    try:
        parts = urlsplit(url.strip())
        username, password = parts.username, parts.password
    except ValueError:
        return []
    if not username or not password or looks_like_token(unquote(username)) or unquote(username) in PUBLIC_USERS:
        return []
    return sorted({username, unquote(username)})


def remember_url(url: str | None) -> None:
    """Add the parts of a URL that can be secret (:func:`url_secrets`) - a Redis URL's password,
    a Pushgateway's path token - but not the URL itself, whose host stays readable; its user
    name is hidden where it stands as a word (:func:`url_user_names`)."""
    if url:
        remember(url_secrets(url))
        with _known_lock:
            _words.update(url_user_names(url))


def forget_all() -> None:
    """Forget every remembered secret (tests; a long-lived process reloading its configuration)."""
    with _known_lock:
        _known.clear()
        _words.clear()


def _clean_url(match: re.Match[str]) -> str:
    """Token-like path segments and query values of one URL replaced (credential query keys are
    handled by :data:`_QUERY`)."""
    whole = match.group()
    url = whole.rstrip(":,.;)]")  # punctuation of the sentence around the URL
    ending = whole[len(url) :]
    cut = re.search(r"[?#]", url)
    base, tail = (url[: cut.start()], url[cut.start() :]) if cut else (url, "")
    scheme, _, rest = base.partition("://")
    host, slash, path = rest.partition("/")
    if not _names_a_server(scheme, host):
        return whole  # a file path or an object key names data, never a credential
    if slash:
        path = "/".join(REDACTED if looks_like_token(s) else s for s in path.split("/"))
    query, hash_mark, fragment = tail.partition("#")
    if query.startswith("?"):
        pairs = re.split(r"([&;])", query[1:])
        for index, pair in enumerate(pairs):
            key, equals, value = pair.partition("=")
            if equals and looks_like_token(value):
                pairs[index] = f"{key}={REDACTED}"
        query = "?" + "".join(pairs)
    return f"{scheme}://{host}{slash}{path}{query}{hash_mark}{fragment}{ending}"


MIN_HIDDEN = 2
"""A fragment shorter than this (a password ``p``) is not replaced at all: it hides nothing that
guessing would not find, and as a word of its own it turned every ``p=<1e-16`` into ``***=<1e-16``."""


def _replace(text: str, piece: str) -> str:
    if len(piece) >= MIN_ANYWHERE:
        return text.replace(piece, REDACTED)
    if len(piece) < MIN_HIDDEN:
        return text
    return re.sub(rf"(?<![A-Za-z0-9]){re.escape(piece)}(?![A-Za-z0-9])", REDACTED, text)


def redact(text: object, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every secret, fragment of a secret and credential in a URL replaced by ``***``.

    >>> redact("POST https://hooks.example/services/T0/B1/xyz failed", ["https://hooks.example/services/T0/B1/xyz"])
    'POST *** failed'
    >>> redact("push to http://admin:hunter22@gw:9091/metrics failed")
    'push to http://***@gw:9091/metrics failed'
    >>> redact("GET https://api.example/v1/hook?api_key=abc123&x=1")
    'GET https://api.example/v1/hook?api_key=***&x=1'
    >>> redact("404 for /services/T0/B1/a1b2c3d4e5f6g7h8i9j0", ["https://hooks.example/services/T0/B1/a1b2c3d4e5f6g7h8i9j0"])
    '404 for /services/T0/B1/***'
    >>> redact("PUT http://127.0.0.1:9091/gw/Abcdefghij12345/metrics/job/churnops?t=AbcdefSecret99 failed")
    'PUT http://127.0.0.1:9091/gw/***/metrics/job/churnops?t=*** failed'
    >>> redact("cannot push to http://gw:9091/x?password=a:b:c: HTTP 400; to http://gw/y?t=a1b2c3d4e5: HTTP 404")
    'cannot push to http://gw:9091/x?password=***: HTTP 400; to http://gw/y?t=***: HTTP 404'
    >>> redact("AUTH abc refused; abcdef kept", ["redis://:abc@cache:6379/0"])
    'AUTH *** refused; abcdef kept'
    >>> redact("https:/svc:Passw0rd77@files.example/b.csv: file not found")
    'https:/***@files.example/b.csv: file not found'
    >>> redact("metadata: //svc:Passw0rd77@host/x.meta.json")
    'metadata: //***@host/x.meta.json'
    >>> redact("user:S3CRETpw@127.0.0.1:/x.csv: file not found; mail bob@example.com at 10:30")
    'user:***@127.0.0.1:/x.csv: file not found; mail bob@example.com at 10:30'
    >>> redact("drifted: slot 10:30, mail:ops@bank.com")
    'drifted: slot 10:30, mail:ops@bank.com'
    >>> redact("svc:hunter2/pw@host:/x.csv and svc:hunter2@pass@host:/y.csv")
    'svc:***@host:/x.csv and svc:***@host:/y.csv'
    >>> redact("https:/svc:hunter2/pw@host/x.csv: not a table")
    'https:/***@host/x.csv: not a table'
    >>> redact("echo: AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261207/us-east-1/s3, Signature=8f3a2b")
    'echo: AWS4-HMAC-SHA256 Credential=***, Signature=***'
    """
    text = str(text)
    with _known_lock:
        known, words = set(_known), set(_words)
    pieces: set[str] = set()
    given = [s for s in secrets if s]
    for secret in [*known, *given]:
        pieces.update(fragments(secret))
    for url in given:
        words.update(url_user_names(url) if "://" in url else ())
    words |= {json.dumps(word)[1:-1] for word in words if not word.isascii()}
    for piece in sorted(pieces, key=lambda p: (-len(p), p)):
        if piece in text:
            text = _replace(text, piece)
    for word in sorted(words, key=lambda w: (-len(w), w)):
        if word.casefold() in text.casefold():
            text = re.sub(
                rf"(?<![A-Za-z0-9_.\-]){re.escape(word)}(?![A-Za-z0-9_\-]|\.[A-Za-z0-9])", REDACTED, text, flags=re.I
            )
    text = _USERINFO.sub(rf"\1{REDACTED}@", text)
    text = _NETWORK_PATH.sub(rf"\1{REDACTED}@", text)
    text = _HOST_USERINFO.sub(rf"\1:{REDACTED}@", text)
    text = _QUERY.sub(rf"\1{REDACTED}", text)
    text = _SIGNED.sub(rf"\1{REDACTED}", text)
    return _URL.sub(_clean_url, text)


_SIGNED = re.compile(
    r"(?i)(\b(?:Credential|Signature|X-Amz-Security-Token|X-Amz-Credential|X-Amz-Signature|AccountKey|"
    r"SharedAccessSignature)\s*[=:]\s*)[^\s,;&'\"<>]+"
)
"""What a server echoes of a signed request: an AWS Signature V4 ``Authorization`` header
(``Credential=AKIA.../...``, ``Signature=...``), a session token header, an Azure account key."""

CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_CLIENT_SECRET",
    "GOOGLE_OAUTH_ACCESS_TOKEN",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "CHURNOPS_API_TOKEN",
    "CHURNOPS_CACHE_KEY",
)
"""Credentials of the services churnops talks to that their libraries take from the environment:
a server may echo one (an S3 error quoting the session token header), so their values are
hidden wherever they turn up, as the secrets the configuration names are."""


def remember_environment(environ: Any) -> None:
    """Remember the values of :data:`CREDENTIAL_VARIABLES` set in ``environ`` - and each value of
    a connection string's ``Name=value;`` pairs."""
    values: list[str] = []
    for name in CREDENTIAL_VARIABLES:
        value = environ.get(name)
        if not value:
            continue
        values.append(value)
        values.extend(part.split("=", 1)[1] for part in value.split(";") if "=" in part and len(part) > 8)
    remember(values)


def redacted_data(value: Any) -> Any:
    """JSON-like ``value`` with every string in it :func:`redact`-ed (a configuration written where
    others read it: an MLflow run's artifacts).

    >>> redacted_data({"metrics": {"pushgateway_url": "http://pgw:S3cretPw@gw:9091/"}, "n": [1, "a"]})
    {'metrics': {'pushgateway_url': 'http://***@gw:9091/'}, 'n': [1, 'a']}
    """
    if isinstance(value, dict):
        return {key: redacted_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redacted_data(item) for item in value]
    return redact(value) if isinstance(value, str) else value
