"""Channel formats: Slack Block Kit, a Teams Adaptive Card, the generic JSON, an e-mail."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from churnops.data.files import read_own_file
from churnops.escape import header, safe_link, slack, teams
from churnops.integrations.notifications.message import Notification

logger = logging.getLogger(__name__)

# one mark per status, so a receiver tells an alert from a warning from a clean run at a glance;
# Teams has three signal colours (Good, Warning, Attention): an alert and a failed stage share
# Attention and differ by their icon and title
EMOJI = {"drift": ":rotating_light:", "warning": ":warning:", "ok": ":white_check_mark:", "error": ":x:"}
ICON = {
    "drift": "\N{POLICE CARS REVOLVING LIGHT}",
    "warning": "\N{WARNING SIGN}\N{VARIATION SELECTOR-16}",
    "ok": "\N{WHITE HEAVY CHECK MARK}",
    "error": "\N{CROSS MARK}",
}
TEAMS_COLOR = {"drift": "Attention", "warning": "Warning", "ok": "Good", "error": "Attention"}


def _mrkdwn(text: str) -> dict[str, Any]:
    """A Slack text object whose data cannot ping, link or be linked automatically."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def slack_payload(note: Notification) -> dict[str, Any]:
    """An incoming-webhook message with Block Kit blocks (and a plain ``text`` fallback).

    Every data-derived value is escaped for mrkdwn (:func:`churnops.escape.slack`) and the text
    objects are ``verbatim``, so a column named ``<!channel>`` is shown, never sent as a ping.
    """
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": note.title[:150], "emoji": True}},
        {"type": "section", "text": _mrkdwn(f"{EMOJI.get(note.status, '')} {slack(note.verdict)}")},
    ]
    if note.findings:
        lines = "\n".join(f"• {slack(f)}" for f in note.findings[:10])
        blocks.append({"type": "section", "text": _mrkdwn(f"*Findings*\n{lines}")})
    facts = note.facts()
    if facts:
        blocks.append(
            {"type": "section", "fields": [_mrkdwn(f"*{label}*\n{slack(value)}") for label, value in facts[:10]]}
        )
    if note.top_columns:
        lines = "\n".join(
            f"• *{slack(c.name)}*: {slack(c.test)} {slack(c.value)} (threshold {slack(c.threshold)})"
            for c in note.top_columns
        )
        blocks.append({"type": "section", "text": _mrkdwn(f"*Most drifted columns*\n{lines}")})
    if note.errors:
        lines = "\n".join(f"• {slack(e)}" for e in note.errors)
        blocks.append({"type": "section", "text": _mrkdwn(f"*Errors*\n{lines}")})
    context = [
        text
        for text in (
            note.report and f"Report: {slack(note.report)}",
            note.metrics and f"Metrics: {slack(note.metrics)}",
        )
        if text
    ]
    if context:
        blocks.append({"type": "context", "elements": [_mrkdwn(t) for t in context]})
    link = safe_link(note.link)
    if link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Open the report"}, "url": link}
                ],
            }
        )
    return {"text": f"{slack(note.title)} - {slack(note.verdict)}", "blocks": blocks}


def teams_payload(note: Notification) -> dict[str, Any]:
    """A Power Automate "Workflows" webhook message carrying one Adaptive Card (schema 1.4).

    Text blocks and facts take Markdown: every data-derived value is escaped for it
    (:func:`churnops.escape.teams`), so a column name cannot become a link or change emphasis.
    """
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": f"{ICON.get(note.status, '')} {teams(note.title)}".strip(),
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            "color": TEAMS_COLOR.get(note.status, "Default"),
        },
        {"type": "TextBlock", "text": teams(note.verdict), "wrap": True},
    ]
    for finding in note.findings[:10]:
        body.append({"type": "TextBlock", "text": "• " + teams(finding), "wrap": True})
    facts = note.facts()
    if facts:
        body.append(
            {"type": "FactSet", "facts": [{"title": teams(label), "value": teams(value)} for label, value in facts]}
        )
    if note.top_columns:
        body.append({"type": "TextBlock", "text": "Most drifted columns", "weight": "Bolder", "wrap": True})
        body.append(
            {
                "type": "FactSet",
                "facts": [
                    {"title": teams(c.name), "value": teams(f"{c.test} {c.value} (threshold {c.threshold})")}
                    for c in note.top_columns
                ],
            }
        )
    for error in note.errors:
        body.append({"type": "TextBlock", "text": teams(error), "wrap": True, "color": "Attention"})
    if note.report:
        body.append({"type": "TextBlock", "text": teams(f"Report: {note.report}"), "wrap": True, "isSubtle": True})
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    link = safe_link(note.link)
    if link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the report", "url": link}]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def webhook_payload(note: Notification) -> dict[str, Any]:
    """The generic JSON: every fact, machine-readable."""
    return {"source": "churnops", "schema_version": "1.0", **note.to_dict()}


def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("churnops.integrations.notifications", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def email_message(
    note: Notification, sender: str, recipients: list[str], subject_prefix: str, attachments: list[Path]
) -> EmailMessage:
    """A multipart e-mail: plain text, an HTML alternative, and the report and metrics attached."""
    message = EmailMessage()
    message["Subject"] = header(f"{subject_prefix} {note.title}".strip())
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message.set_content(note.text())
    html = (
        _templates()
        .get_template("email.html.j2")
        .render(note=note, link=safe_link(note.link), build_link=safe_link(note.build_url))
    )
    message.add_alternative(html, subtype="html")
    for path in attachments:
        data = read_own_file(path)  # a link in a file's place is not followed: never another file mailed
        if data is None:
            if path.is_symlink() or path.exists():
                logger.warning("%s: not attached: it is a link or not a regular file, not what churnops wrote", path)
            continue
        maintype, subtype = ("text", "html") if path.suffix == ".html" else ("application", "json")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=path.name)
    return message
