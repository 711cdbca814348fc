"""churnops' own HTTP client: one request, no redirect followed, no word of the server kept.

The webhooks (Slack, Teams, generic) and the Pushgateway push go through :func:`send`. Two rules
keep their credentials where they were meant to go:

* A redirect is never followed. urllib's default opener follows a 3xx to any host, with the
  ``Authorization`` header churnops made from the URL's user info - even from https to http - and
  with the body. Here a 3xx is a failure naming its status and saying that the address
  redirects; the ``Location`` is not shown (it can carry the token of the address it came from).
  The user sets the final address instead.
* Of an HTTP error only the status is kept: the reason phrase and the body are the server's
  words, which can echo the URL's path, its query or the credentials (base64 or not).
"""

from __future__ import annotations

import base64
import http.client
import urllib.error
import urllib.request
from urllib.parse import unquote, urlsplit, urlunsplit


class HttpFailure(Exception):
    """A request that did not succeed, in churnops' words only."""

    def __init__(self, message: str, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        """The HTTP status the server answered, when it answered."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Declines every redirect: urllib then raises the 3xx as an :class:`urllib.error.HTTPError`."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


def without_userinfo(url: str) -> tuple[str, dict[str, str]]:
    """The URL without ``user:password@``, and the Basic authorization header it stood for.

    >>> without_userinfo("https://bot:pa%40ss@hooks.example/x")
    ('https://hooks.example/x', {'Authorization': 'Basic Ym90OnBhQHNz'})
    >>> without_userinfo("http://gw:9091/metrics")
    ('http://gw:9091/metrics', {})
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, {}
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode("ascii")
    return urlunsplit(parts._replace(netloc=host)), {"Authorization": f"Basic {token}"}


def send(url: str, method: str, data: bytes, headers: dict[str, str], timeout: float) -> int:
    """Send one request; the status of a 2xx answer, else :class:`HttpFailure`.

    User info in ``url`` becomes a Basic ``Authorization`` header (urllib would take it for part
    of the host name). 5xx, timeouts and lost connections are ``retryable``; 3xx and 4xx are not.
    """
    address, auth = without_userinfo(url)
    request = urllib.request.Request(address, data=data, headers={**headers, **auth}, method=method)
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        if 300 <= exc.code < 400:
            raise HttpFailure(
                f"HTTP {exc.code} from the server: the address redirects to another one, which churnops does not "
                "follow (it would take the credentials along); set the final address instead",
                retryable=False,
                status=exc.code,
            ) from None
        raise HttpFailure(f"HTTP {exc.code} from the server", retryable=exc.code >= 500, status=exc.code) from None
    except urllib.error.URLError as exc:
        raise HttpFailure(f"cannot connect: {exc.reason}", retryable=True) from None
    except TimeoutError:
        raise HttpFailure(f"no answer within {timeout:g} s", retryable=True) from None
    except ConnectionError as exc:
        raise HttpFailure(f"connection lost: {exc}", retryable=True) from None
    except (ValueError, http.client.HTTPException) as exc:  # an address urllib cannot use
        raise HttpFailure(f"cannot use the address: {type(exc).__name__}", retryable=False) from None
