"""One redaction of secrets for everything churnops prints or writes.

Secrets reach churnops through environment variables named in the configuration (webhook URLs,
SMTP and database passwords) and inside URLs given in the configuration (a Pushgateway or DVC
remote with ``user:password@``, a ``?token=`` query). A secret can come back in pieces: a server
echoes the path of a webhook URL in its error, a library prints the URL without its scheme, a
URL-encoded copy turns up in a message. So :func:`redact` removes

* every secret churnops was told about (:func:`remember`), and each fragment of it - the user
  info, the password, long path segments, query values - also URL-encoded;
* in any URL in the text: the user info, the values of query parameters that carry
  credentials (``token``, ``key``, ``sig``, ``password``...), and path segments that look like
  tokens (16 characters or more mixing letters and digits).

This module imports nothing from churnops; the CLI's output, the log, notifications, the
pipeline summary and error messages all go through :func:`redact`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit

REDACTED = "***"

SENSITIVE_QUERY_KEYS = (
    "token|access_token|refresh_token|id_token|auth|auth_token|authorization|key|api_key|apikey|api-key|"
    "secret|client_secret|password|passwd|pwd|pass|sig|signature|code|credential|credentials|session|"
    "sessionid|x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential"
)
_QUERY = re.compile(rf"(?i)([?&;](?:{SENSITIVE_QUERY_KEYS})=)[^&#;\s'\"<>]+")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@'\"<>]+@")
_URL = re.compile(r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s'\"<>]+")
_TOKEN_SEGMENT = re.compile(r"(?=[^/]*[A-Za-z])(?=[^/]*\d)[A-Za-z0-9_\-+=~%]{16,}")


def _looks_like_token(text: str) -> bool:
    """A path segment that is probably a credential: long, or mixing letters and digits.

    >>> _looks_like_token("services"), _looks_like_token("B0123ABCD"), _looks_like_token("x" * 24)
    (False, True, True)
    """
    mixed = any(c.isdigit() for c in text) and any(c.isalpha() for c in text)
    return len(text) >= 20 or (len(text) >= 8 and mixed)


_known: set[str] = set()
_known_lock = threading.Lock()


def fragments(secret: str) -> list[str]:
    """The secret and the pieces of it worth hiding on their own, longest first.

    >>> pieces = fragments("https://user:s3cretpass@hooks.example/services/T0/B1/abcdefgh12345678?token=zz99zz99")
    >>> [p for p in pieces if "://" not in p and "%" not in p]
    ['abcdefgh12345678', 'user:s3cretpass', 's3cretpass', 'zz99zz99']
    """
    secret = secret.strip()
    if not secret:
        return []
    found = {secret}
    if "://" in secret:
        try:
            parts = urlsplit(secret)
        except ValueError:
            parts = None
        if parts is not None:
            userinfo = parts.netloc.rpartition("@")[0]
            if userinfo:
                found.add(userinfo)
                if parts.password and len(parts.password) >= 4:
                    found.add(parts.password)
            for segment in parts.path.split("/"):
                if _looks_like_token(segment):
                    found.add(segment)
            for pair in re.split(r"[&;]", parts.query):
                value = pair.partition("=")[2]
                if len(value) >= 6:
                    found.add(value)
            if len(parts.fragment) >= 8:
                found.add(parts.fragment)
    encoded = {quote(f, safe="") for f in found} | {unquote(f) for f in found}
    found |= {f for f in encoded if len(f) >= 6}
    return sorted(found, key=lambda f: (-len(f), f))


def remember(secrets: Iterable[str | None]) -> None:
    """Add secrets (e.g. the values of the environment variables the configuration names)."""
    with _known_lock:
        _known.update(s for s in secrets if s and len(s.strip()) >= 4)


def forget_all() -> None:
    """Forget every remembered secret (tests; a long-lived process reloading its configuration)."""
    with _known_lock:
        _known.clear()


OBJECT_STORAGE = frozenset({"s3", "gs", "gcs", "az", "abfs", "abfss", "wasb", "wasbs"})
"""URL schemes of object storage, whose paths are bucket keys: long names in them are kept."""


def _clean_url(match: re.Match[str]) -> str:
    """Token-like path segments of one URL replaced (the query is handled by :data:`_QUERY`)."""
    url = match.group()
    cut = re.search(r"[?#]", url)
    base, tail = (url[: cut.start()], url[cut.start() :]) if cut else (url, "")
    scheme, _, rest = base.partition("://")
    host, slash, path = rest.partition("/")
    if not slash or scheme.lower() in OBJECT_STORAGE:
        return url  # an object key names data, never a credential (those URLs refuse user and query)
    segments = [REDACTED if _TOKEN_SEGMENT.fullmatch(s) else s for s in path.split("/")]
    return f"{scheme}://{host}/{'/'.join(segments)}{tail}"


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
    """
    text = str(text)
    with _known_lock:
        known = set(_known)
    pieces: set[str] = set()
    for secret in [*known, *(s for s in secrets if s)]:
        pieces.update(fragments(secret))
    for piece in sorted(pieces, key=lambda p: (-len(p), p)):
        if piece in text:
            text = text.replace(piece, REDACTED)
    text = _USERINFO.sub(rf"\1{REDACTED}@", text)
    text = _QUERY.sub(rf"\1{REDACTED}", text)
    return _URL.sub(_clean_url, text)
