"""Channel formats: Slack Block Kit, a Teams Adaptive Card, the generic JSON, an e-mail."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from churnops.integrations.notifications.message import Notification

EMOJI = {"drift": ":warning:", "ok": ":white_check_mark:", "error": ":x:"}
TEAMS_COLOR = {"drift": "Attention", "ok": "Good", "error": "Attention"}


def slack_payload(note: Notification) -> dict[str, Any]:
    """An incoming-webhook message with Block Kit blocks (and a plain ``text`` fallback)."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": note.title[:150], "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{EMOJI.get(note.status, '')} {note.verdict}"}},
    ]
    facts = note.facts()
    if facts:
        blocks.append(
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": f"*{label}*\n{value}"} for label, value in facts[:10]],
            }
        )
    if note.top_columns:
        lines = "\n".join(f"• *{c.name}*: {c.test} {c.value} (threshold {c.threshold})" for c in note.top_columns)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*Most drifted columns*\n{lines}"}})
    if note.errors:
        lines = "\n".join(f"• {e}" for e in note.errors)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*Errors*\n{lines}"}})
    context = [
        text for text in (note.report and f"Report: {note.report}", note.metrics and f"Metrics: {note.metrics}") if text
    ]
    if context:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": t} for t in context]})
    if note.link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Open the report"}, "url": note.link}
                ],
            }
        )
    return {"text": f"{note.title} - {note.verdict}", "blocks": blocks}


def teams_payload(note: Notification) -> dict[str, Any]:
    """A Power Automate "Workflows" webhook message carrying one Adaptive Card (schema 1.4)."""
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": note.title,
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            "color": TEAMS_COLOR.get(note.status, "Default"),
        },
        {"type": "TextBlock", "text": note.verdict, "wrap": True},
    ]
    facts = note.facts()
    if facts:
        body.append({"type": "FactSet", "facts": [{"title": label, "value": value} for label, value in facts]})
    if note.top_columns:
        body.append({"type": "TextBlock", "text": "Most drifted columns", "weight": "Bolder", "wrap": True})
        body.append(
            {
                "type": "FactSet",
                "facts": [
                    {"title": c.name, "value": f"{c.test} {c.value} (threshold {c.threshold})"}
                    for c in note.top_columns
                ],
            }
        )
    for error in note.errors:
        body.append({"type": "TextBlock", "text": error, "wrap": True, "color": "Attention"})
    if note.report:
        body.append({"type": "TextBlock", "text": f"Report: {note.report}", "wrap": True, "isSubtle": True})
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if note.link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the report", "url": note.link}]
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
    message["Subject"] = f"{subject_prefix} {note.title}".strip()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message.set_content(note.text())
    message.add_alternative(_templates().get_template("email.html.j2").render(note=note), subtype="html")
    for path in attachments:
        if not path.is_file():
            continue
        maintype, subtype = ("text", "html") if path.suffix == ".html" else ("application", "json")
        message.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name)
    return message
