"""Notifications: e-mail over SMTP, Slack (Block Kit), Microsoft Teams (Adaptive Card), webhooks, a file.

The transports are Python's own ``smtplib`` and ``urllib``: the payloads (Block Kit, Adaptive
Cards, the generic JSON) are ours, so every channel shares one retry policy, one timeout rule
and one secret-redaction rule, without another dependency.
"""
