"""Delivering a notification on every configured channel, independently.

Every channel has a timeout and bounded retries with exponential backoff on connection errors,
timeouts and HTTP 5xx; a failing channel never stops the others. A webhook that redirects is a
failed delivery (a redirect is never followed: it would take the credentials along). Secrets (SMTP credentials and
webhook URLs, which embed tokens) are read from the environment and redacted from every
message this module produces.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churnops.config import Config, EmailChannel, FileChannel, WebhookChannel
from churnops.data.files import append_text
from churnops.integrations import web
from churnops.integrations.notifications.message import Notification
from churnops.integrations.notifications.payloads import email_message, slack_payload, teams_payload, webhook_payload
from churnops.redact import redact

logger = logging.getLogger(__name__)


class RetryableError(Exception):
    """A failure worth another attempt (connection refused, timeout, HTTP 5xx)."""


class PermanentError(Exception):
    """A failure another attempt would not fix (authentication, HTTP 4xx, missing secret)."""


@dataclass(frozen=True)
class Delivery:
    channel: str
    status: str
    """``sent``, ``skipped``, ``failed`` or ``dry-run``."""
    attempts: int = 0
    error: str | None = None
    preview: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "status": self.status, "attempts": self.attempts, "error": self.error}


def channel_label(channel: EmailChannel | WebhookChannel | FileChannel, index: int) -> str:
    return channel.name or f"{channel.type}#{index + 1}"


def _retrying(action: Callable[[], None], retries: int, backoff: float) -> int:
    """Run ``action``; retry on :class:`RetryableError`. Returns the number of attempts."""
    attempt = 0
    while True:
        attempt += 1
        try:
            action()
            return attempt
        except RetryableError:
            if attempt > retries:
                raise
            time.sleep(backoff * 2 ** (attempt - 1))


def _post_json(url: str, payload: dict[str, Any], timeout: float) -> None:
    """POST ``payload``; a redirect is a failure, never followed (:mod:`churnops.integrations.web`)."""
    body = json.dumps(payload).encode("utf-8")
    headers = {"Content-Type": "application/json", "User-Agent": "churnops"}
    try:
        web.send(url, "POST", body, headers, timeout)
    except web.HttpFailure as exc:
        raise (RetryableError if exc.retryable else PermanentError)(str(exc)) from None


def _send_email(channel: EmailChannel, message: Any, env: Mapping[str, str], ca_file: Path | None = None) -> None:
    """Send ``message``; ``ca_file``: the channel's certificate authorities, resolved in the
    project (a relative path never leaves it)."""
    user = env.get(channel.username_env) if channel.username_env else None
    password = env.get(channel.password_env) if channel.password_env else None
    if channel.username_env and not user:
        raise PermanentError(f"environment variable {channel.username_env} is not set")
    if channel.password_env and not password:
        raise PermanentError(f"environment variable {channel.password_env} is not set")
    context = ssl.create_default_context(cafile=ca_file) if channel.security != "plain" else None
    try:
        if channel.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                channel.host, channel.port, timeout=channel.timeout_s, context=context
            )
        else:
            client = smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout_s)
        with client:
            if channel.security == "starttls":
                client.starttls(context=context)
            if user:
                client.login(user, password or "")
            client.send_message(message)
    except smtplib.SMTPAuthenticationError:
        raise PermanentError("the SMTP server refused the credentials") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise PermanentError(f"recipients refused: {', '.join(exc.recipients)}") from None
    except smtplib.SMTPNotSupportedError as exc:
        raise PermanentError(f"SMTP server does not support it: {exc}") from None
    except ssl.SSLError as exc:
        raise PermanentError(f"TLS failed: {exc.reason or exc}") from None
    except TimeoutError:
        raise RetryableError(f"no answer within {channel.timeout_s:g} s") from None
    except smtplib.SMTPResponseException as exc:  # (an OSError too: before the clause below)
        # the server's words are not repeated: a server may echo what it was sent (the login)
        said = f"SMTP {exc.smtp_code}{_enhanced_status(exc.smtp_error)}: the server refused the message"
        if exc.smtp_code >= 500:
            raise PermanentError(said) from None
        raise RetryableError(said) from None
    except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError, OSError) as exc:
        raise RetryableError(f"cannot talk to {channel.host}:{channel.port}: {exc}") from None


def _enhanced_status(reply: bytes | str) -> str:
    """The enhanced status code at the start of an SMTP reply (`` (5.7.1)``), the only part of
    the server's words a message repeats.

    >>> _enhanced_status(b"5.7.1 rejected for session auth=AG1haWx1c2Vy"), _enhanced_status(b"no")
    (' (5.7.1)', '')
    """
    import re

    text = reply.decode("ascii", errors="replace") if isinstance(reply, bytes) else str(reply)
    found = re.match(r"\s*([245]\.\d{1,3}\.\d{1,3})\b", text)
    return f" ({found.group(1)})" if found else ""


def _secrets(channel: EmailChannel | WebhookChannel | FileChannel, env: Mapping[str, str]) -> list[str]:
    names: list[str | None] = []
    if isinstance(channel, EmailChannel):
        names = [channel.password_env]
    elif isinstance(channel, WebhookChannel):
        names = [channel.url_env]
    return [env[name] for name in names if name and env.get(name)]


def receives(on: Sequence[str], status: str) -> bool:
    """Whether a channel whose ``on`` list is ``on`` speaks for ``status``.

    A warning also goes where ``ok`` does: a channel told that a run was clean must hear that one
    was not quite (before the ``warning`` status existed, warnings were sent to it as ``ok``).

    >>> receives(["drift", "ok"], "warning"), receives(["drift", "error"], "warning")
    (True, False)
    """
    return status in on or (status == "warning" and "ok" in on)


def send_all(
    config: Config,
    note: Notification,
    attachments: list[Path],
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
) -> list[Delivery]:
    """Deliver ``note`` on every channel configured for its status."""
    env = os.environ if env is None else env
    deliveries = []
    for index, channel in enumerate(config.notify.channels):
        label = channel_label(channel, index)
        if not receives(channel.on, note.status):
            deliveries.append(Delivery(label, "skipped", error=f"not configured for '{note.status}'"))
            continue
        secrets = _secrets(channel, env)
        try:
            action, preview = _prepare(config, channel, note, attachments, env)
        except PermanentError as exc:
            deliveries.append(Delivery(label, "failed", 0, redact(str(exc), secrets)))
            continue
        except Exception as exc:  # building one channel's message must not stop the others
            message = redact(f"cannot build the message: {type(exc).__name__}: {exc}", secrets)
            logger.warning("notification %s: %s", label, message)
            deliveries.append(Delivery(label, "failed", 0, message))
            continue
        if dry_run:
            deliveries.append(Delivery(label, "dry-run", 0, preview=redact(preview, secrets)))
            continue
        try:
            attempts = _retrying(action, channel.retries, channel.backoff_s)
            deliveries.append(Delivery(label, "sent", attempts))
        except (RetryableError, PermanentError) as exc:
            attempts = channel.retries + 1 if isinstance(exc, RetryableError) else 1
            message = redact(str(exc), secrets)
            logger.warning("notification %s: %s", label, message)
            deliveries.append(Delivery(label, "failed", attempts, message))
        except Exception as exc:  # an unexpected failure of one channel must not stop the others
            message = redact(f"{type(exc).__name__}: {exc}", secrets)
            logger.warning("notification %s: %s", label, message)
            deliveries.append(Delivery(label, "failed", 1, message))
    return deliveries


def _prepare(
    config: Config,
    channel: EmailChannel | WebhookChannel | FileChannel,
    note: Notification,
    attachments: list[Path],
    env: Mapping[str, str],
) -> tuple[Callable[[], None], str]:
    """The sending action of a channel and a preview of what it sends."""
    if isinstance(channel, FileChannel):
        path = config.resolve(channel.path)
        line = json.dumps({"status": note.status, "title": note.title, **dict(note.facts())}, ensure_ascii=False)

        def append() -> None:
            append_text(path, line + "\n")  # one line per notification, a log; never through a link

        return append, f"append to {path}: {line}"
    if isinstance(channel, EmailChannel):
        files = [
            p
            for p in attachments
            if (p.suffix == ".html" and channel.attach_report) or (p.suffix == ".json" and channel.attach_metrics)
        ]
        message = email_message(note, channel.sender, channel.recipients, config.notify.subject_prefix, files)

        ca_file = config.resolve(channel.ca_file) if channel.ca_file else None

        def send_email() -> None:
            _send_email(channel, message, env, ca_file)

        attached = ", ".join(str(part.get_filename()) for part in message.iter_attachments()) or "nothing"
        preview = (
            f"To: {', '.join(channel.recipients)}\nSubject: {message['Subject']}\nAttached: {attached}\n\n{note.text()}"
        )
        return send_email, preview
    url = env.get(channel.url_env, "")
    if not url:
        raise PermanentError(f"environment variable {channel.url_env} is not set")
    if not url.startswith(("http://", "https://")):
        raise PermanentError(f"{channel.url_env} is not an http(s) URL")
    render = {"slack": slack_payload, "teams": teams_payload, "webhook": webhook_payload}[channel.type]
    payload = render(note)

    def post() -> None:
        _post_json(url, payload, channel.timeout_s)

    return post, f"POST {url}\n{json.dumps(payload, indent=2, ensure_ascii=False)}"
