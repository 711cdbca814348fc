"""Notifications against real servers on 127.0.0.1: aiosmtpd for e-mail, an HTTP server for webhooks."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from servers import PASSWORD, USER, free_port, http_server, smtp_server

pytest.importorskip("aiosmtpd", reason="needs: aiosmtpd")

SLACK_TOKEN = "T0SECRET/B0SECRET/xoxb-very-secret-token"


def write_config(workspace: Path, channels: str) -> None:
    (workspace / "churnops.toml").write_text(channels, encoding="utf-8")


@pytest.fixture()
def drifted(bank_workspace, cli):
    assert cli("generate").exit_code == 0
    assert cli("monitor").exit_code == 0
    return bank_workspace


def email_channel(port: int, security: str = "plain", auth: bool = True, extra: str = "") -> str:
    lines = [
        "[[notify.channels]]",
        'type = "email"',
        'name = "team-mail"',
        'host = "127.0.0.1"',
        f"port = {port}",
        f'security = "{security}"',
        'sender = "churnops@bank.example"',
        'recipients = ["mlops@bank.example", "risk@bank.example"]',
        'on = ["drift", "ok", "error"]',
        "timeout_s = 5",
    ]
    if auth:
        lines += ['username_env = "SMTP_USER"', 'password_env = "SMTP_PASSWORD"']
    return "\n".join(lines) + "\n" + extra + "\n"


def webhook_channel(
    kind: str, url_env: str, on: str = '["drift", "ok", "error"]', timeout: float = 2, retries: int = 2
) -> str:
    return (
        f'[[notify.channels]]\ntype = "{kind}"\nurl_env = "{url_env}"\non = {on}\n'
        f"timeout_s = {timeout}\nretries = {retries}\nbackoff_s = 0.05\n"
    )


@pytest.mark.parametrize("security", ["plain", "starttls", "ssl"])
def test_email_with_html_text_attachments_and_auth(drifted, cli, monkeypatch, tmp_path, security):
    monkeypatch.setenv("SMTP_USER", USER)
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    with smtp_server(security, folder=tmp_path) as server:
        extra = f'ca_file = "{tmp_path / "cert.pem"}"' if security != "plain" else ""
        write_config(drifted, email_channel(server.port, security, extra=extra))
        result = cli("notify")
        assert result.exit_code == 0, result.output
        assert "team-mail: sent" in result.output
    assert server.logins == [USER]
    sender, recipients = server.envelopes[0]
    assert sender == "churnops@bank.example"
    assert recipients == ["mlops@bank.example", "risk@bank.example"]
    message = server.messages[0]
    assert str(message["Subject"]).strip() == (
        "[churnops] Alert on bank_churn_prod.csv: Churn Flag rate +4.7 points, data drift (3 of 16 columns)"
    )
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for body in (text, html):
        assert "0.188" in body and "Credit Score" in body and "Balance" in body and "Income" in body
    assert "Churn Flag rate 19.7% -&gt; 24.4%" in html or "Churn Flag rate 19.7% -> 24.4%" in html
    attachments = {part.get_filename(): part for part in message.iter_attachments()}
    assert set(attachments) == {"monitoring_report.standalone.html", "monitoring_metrics.json"}
    report = attachments["monitoring_report.standalone.html"].get_content()
    assert "<style>" in report and "Alert: 2 findings" in report
    metrics = json.loads(attachments["monitoring_metrics.json"].get_content())
    assert metrics["dataset_drift"]["detected"] is True


def test_an_smtp_refusal_that_echoes_the_login_is_not_repeated(drifted, cli, monkeypatch, tmp_path):
    """A server refusing the message with the session's AUTH token in its reply had it printed and
    kept three times in pipeline_summary.json - base64 of the password, which no redaction knows.
    The error says the code and the enhanced status only."""
    import base64

    token = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    monkeypatch.setenv("SMTP_USER", USER)
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    with smtp_server("plain", folder=tmp_path, reply=f"554 5.7.1 rejected for session auth={token}") as server:
        write_config(drifted, email_channel(server.port))
        result = cli("notify")
    assert result.exit_code != 0, result.output
    assert "SMTP 554 (5.7.1): the server refused the message" in result.output, result.output
    assert token not in result.output and "rejected for session" not in result.output
    notes = drifted / "monitoring" / "notification.txt"
    assert not notes.exists() or token not in notes.read_text()


def test_a_report_address_with_a_password_is_refused_and_never_sent(drifted, cli):
    """notify.report_url = https://user:password@host/... went out in clear text in the e-mail's text
    part and the webhook JSON (the HTML, Slack and Teams messages left it out). It is refused; and
    a message built with such an address carries none."""
    from churnops.integrations.notifications.message import build_notification

    url = "https://reportuser:R3portPassw0rd@reports.example/r.html?token=RPTTOKEN12345abc"
    result = cli("notify", "--dry-run", "--set", f"notify.report_url='{url}'")
    assert result.exit_code == 2 and "notify.report_url: holds user:password@" in result.output, result.output
    assert "R3portPassw0rd" not in result.output
    for other, said in (
        ("https:u:hunter2@reports.example/r", "not an http(s) address"),  # no '//': no host, the password kept
        ("u:hunter2@reports.example/r", "not an http(s) address"),
        ("https://reports.example/r?access_key=k3y", "holds a credential in its query (access_key=)"),
    ):
        result = cli("notify", "--dry-run", "--set", f"notify.report_url='{other}'")
        assert result.exit_code == 2 and said in result.output, result.output
    assert cli("notify", "--dry-run", "--set", "notify.report_url='https://ci.example/job/{run_id}/'").exit_code == 0
    metrics = json.loads((drifted / "monitoring" / "monitoring_metrics.json").read_text())
    note = build_notification("drift", metrics, report_url=url, env={"BUILD_URL": "https://u:pw0rd99@ci.example/7/"})
    assert "R3portPassw0rd" not in note.text() + json.dumps(note.to_dict()) and "pw0rd99" not in note.text()
    env = {"BUILD_URL": "https://ci.example/7/?access_key=swordfish9"}
    note = build_notification("drift", metrics, report_url="https:u:hunter2@r.example/r", env=env)
    assert "hunter2" not in note.text() + json.dumps(note.to_dict()) and "swordfish9" not in note.text()


def test_a_relative_ca_file_never_leaves_the_project(drifted, cli, tmp_path):
    """email.ca_file = "../ca.pem" was read from outside the workspace, where every other relative
    path is confined to it."""
    (drifted.parent / "ca_outside.pem").write_text("not a certificate\n")
    write_config(drifted, email_channel(free_port(), "starttls", auth=False, extra='ca_file = "../ca_outside.pem"'))
    result = cli("notify")
    assert result.exit_code != 0, result.output
    assert "path '../ca_outside.pem' leaves the project folder" in result.output, result.output


def test_a_link_in_place_of_a_report_is_never_mailed(drifted, cli, monkeypatch, tmp_path):
    """A symbolic link planted at monitoring/monitoring_report.standalone.html between the run and
    `notify` (separate CI steps) had the file it points to mailed as the report: any file the job
    can read. The attachment is opened without following links; the metrics still go."""
    secret = tmp_path / "id_rsa"
    secret.write_text("TOP SECRET PRIVATE KEY\n")
    report = drifted / "monitoring" / "monitoring_report.standalone.html"
    report.unlink()
    report.symlink_to(secret)
    monkeypatch.setenv("SMTP_USER", USER)
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    with smtp_server("plain", folder=tmp_path) as server:
        write_config(drifted, email_channel(server.port))
        result = cli("notify")
        assert result.exit_code == 0, result.output
        assert "not attached: it is a link" in result.output, result.output
    message = server.messages[0]
    assert [part.get_filename() for part in message.iter_attachments()] == ["monitoring_metrics.json"]
    assert "TOP SECRET" not in message.as_string() and "VE9QIFNFQ1JFVCBQUklWQVRF" not in message.as_string()


def test_slack_teams_and_webhook_payloads(drifted, cli, monkeypatch):
    with http_server() as server:
        monkeypatch.setenv("SLACK_URL", f"{server.url}/services/{SLACK_TOKEN}")
        monkeypatch.setenv("TEAMS_URL", f"{server.url}/workflows/teams")
        monkeypatch.setenv("HOOK_URL", f"{server.url}/hook")
        monkeypatch.setenv("BUILD_URL", "https://jenkins.bank.example/job/churn/42/")
        write_config(
            drifted,
            webhook_channel("slack", "SLACK_URL")
            + webhook_channel("teams", "TEAMS_URL")
            + webhook_channel("webhook", "HOOK_URL"),
        )
        result = cli("notify")
        assert result.exit_code == 0, result.output
    by_path = {r["path"].split("/")[1]: r for r in server.requests}
    slack = by_path["services"]["json"]
    assert slack["text"].startswith("Alert on bank_churn_prod.csv: Churn Flag rate")
    kinds = [block["type"] for block in slack["blocks"]]
    assert kinds[0] == "header" and "section" in kinds and "actions" in kinds
    for block in slack["blocks"]:
        assert block["type"] in {"header", "section", "context", "actions", "divider"}
        if block["type"] == "section":
            assert "text" in block or "fields" in block
            for item in block.get("fields", []):
                assert item["type"] == "mrkdwn" and len(item["text"]) <= 2000
    flat = json.dumps(slack)
    assert "0.188 (threshold 0.1)" in flat and "*Credit Score*" in flat and "3 of 16" in flat
    assert "https://jenkins.bank.example/job/churn/42/" in flat  # the CI build link
    teams = by_path["workflows"]["json"]
    assert teams["type"] == "message"
    attachment = teams["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4" and "$schema" in card
    facts = {f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]}
    assert facts["Dataset drift score"] == "0.188 \\(threshold 0.1\\)"  # parentheses escaped for Markdown
    assert facts["Credit Score"].startswith("wasserstein 0.19")
    assert card["actions"][0]["type"] == "Action.OpenUrl"
    hook = by_path["hook"]["json"]
    assert hook["source"] == "churnops" and hook["status"] == "drift"
    assert hook["n_drifted"] == 3 and hook["dataset_score"] == pytest.approx(0.1875)
    assert [c["name"] for c in hook["top_columns"]] == ["Credit Score", "Balance", "Income"]


@pytest.fixture()
def warned(bank_workspace, cli):
    """A run whose verdict is a warning, not an alert: no drift, but 60% of Income empty."""
    import polars as pl

    assert cli("generate", "--intensity", "0").exit_code == 0
    path = bank_workspace / "data" / "production" / "bank_churn_prod.csv"
    batch = pl.read_csv(path)
    emptied = pl.when(pl.int_range(batch.height) < int(batch.height * 0.6)).then(None).otherwise(pl.col("Income"))
    batch.with_columns(emptied.alias("Income")).write_csv(path)
    assert cli("monitor").exit_code == 0
    verdict = json.loads((bank_workspace / "monitoring" / "monitoring_metrics.json").read_text())["verdict"]
    assert (verdict["status"], verdict["trigger"]) == ("warning", False)
    return bank_workspace


def test_a_warning_is_told_apart_from_ok_and_from_an_alert_on_every_channel(warned, cli, monkeypatch, tmp_path):
    """Slack's mark, Teams' colour and icon, the webhook's status and the e-mail subject each say
    "warning" - not the clean run's check mark, "Good", "ok" or "No alert"."""
    with http_server() as server, smtp_server("plain", folder=tmp_path) as smtp:
        for name in ("SLACK", "TEAMS", "HOOK"):
            monkeypatch.setenv(f"{name}_URL", f"{server.url}/{name.lower()}")
        write_config(
            warned,
            email_channel(smtp.port, auth=False)
            + webhook_channel("slack", "SLACK_URL")
            + webhook_channel("teams", "TEAMS_URL")
            + webhook_channel("webhook", "HOOK_URL")
            + webhook_channel("webhook", "HOOK_URL", on='["drift", "warning"]')
            + webhook_channel("webhook", "HOOK_URL", on='["drift", "error"]'),
        )
        result = cli("notify")
        assert result.exit_code == 0, result.output
    # a channel listing "ok" hears warnings, as does one listing "warning"; drift/error-only does not
    assert "webhook#5: sent" in result.output and "webhook#6: skipped" in result.output, result.output
    subject = str(smtp.messages[0]["Subject"]).strip()
    assert subject == "[churnops] Warning on bank_churn_prod.csv: data quality below threshold", subject
    by_path = {}
    for request in server.requests:
        by_path.setdefault(request["path"], request["json"])
    slack = by_path["/slack"]
    assert slack["text"].startswith("Warning on bank_churn_prod.csv")
    assert slack["blocks"][1]["text"]["text"].startswith(":warning: ")
    assert ":white_check_mark:" not in json.dumps(slack)
    title = by_path["/teams"]["attachments"][0]["content"]["body"][0]
    assert title["color"] == "Warning" and title["text"].startswith("\N{WARNING SIGN}")
    hook = by_path["/hook"]
    assert hook["status"] == "warning" and hook["title"].startswith("Warning on")
    assert any("Income" in finding for finding in hook["findings"])


@pytest.mark.parametrize(
    ("status", "emoji", "color"),
    [
        ("drift", ":rotating_light:", "Attention"),
        ("warning", ":warning:", "Warning"),
        ("ok", ":white_check_mark:", "Good"),
        ("error", ":x:", "Attention"),
    ],
)
def test_each_status_has_its_own_mark(status, emoji, color):
    from churnops.integrations.notifications.message import Notification
    from churnops.integrations.notifications.payloads import ICON, slack_payload, teams_payload, webhook_payload

    note = Notification(status=status, title="t", verdict="v")
    assert slack_payload(note)["blocks"][1]["text"]["text"] == f"{emoji} v"
    title = teams_payload(note)["attachments"][0]["content"]["body"][0]
    assert title["color"] == color and title["text"] == f"{ICON[status]} t"
    assert webhook_payload(note)["status"] == status
    assert len(set(ICON.values())) == 4


def test_channels_speak_only_for_their_statuses(bank_workspace, cli, monkeypatch):
    cli("generate", "--intensity", "0")
    cli("monitor")
    with http_server() as server:
        monkeypatch.setenv("SLACK_URL", f"{server.url}/drift-only")
        monkeypatch.setenv("HOOK_URL", f"{server.url}/always")
        write_config(
            bank_workspace, webhook_channel("slack", "SLACK_URL", '["drift"]') + webhook_channel("webhook", "HOOK_URL")
        )
        result = cli("notify")
        assert result.exit_code == 0
        assert "slack#1: skipped" in result.output and "webhook#2: sent" in result.output
    assert [r["path"] for r in server.requests] == ["/always"]
    assert server.requests[0]["json"]["status"] == "ok"


def test_retries_timeouts_and_a_dead_server_do_not_stop_other_channels(drifted, cli, monkeypatch):
    dead = free_port()
    with http_server() as flaky, http_server() as slow, http_server() as good:
        flaky.responses = [500]
        slow.hold = threading.Event()  # never answers while the client waits
        monkeypatch.setenv("FLAKY_URL", f"{flaky.url}/flaky")
        monkeypatch.setenv("SLOW_URL", f"{slow.url}/slow")
        monkeypatch.setenv("DEAD_URL", f"http://127.0.0.1:{dead}/dead")
        monkeypatch.setenv("GOOD_URL", f"{good.url}/good")
        channels = (
            webhook_channel("webhook", "DEAD_URL")
            + webhook_channel("webhook", "FLAKY_URL", timeout=60)
            + webhook_channel("webhook", "SLOW_URL", timeout=0.5, retries=1)
            + webhook_channel("webhook", "GOOD_URL", timeout=60)
        )
        write_config(drifted, channels)
        try:
            result = cli("notify")
        finally:
            slow.hold.set()
    assert result.exit_code == 4, result.output
    lines = result.output
    assert "webhook#1: failed after 3 attempts - cannot connect" in lines
    assert "webhook#2: sent after 2 attempts" in lines  # 500, then 200
    assert "webhook#3: failed after 2 attempts - no answer within 0.5 s" in lines
    assert "webhook#4: sent" in lines
    assert len(flaky.requests) == 2 and len(good.requests) == 1


def test_permanent_errors_are_not_retried(drifted, cli, monkeypatch):
    with http_server() as server:
        server.responses = [404, 404, 404]
        monkeypatch.setenv("HOOK_URL", f"{server.url}/gone")
        write_config(drifted, webhook_channel("webhook", "HOOK_URL"))
        result = cli("notify")
    assert result.exit_code == 4 and "HTTP 404" in result.output
    assert len(server.requests) == 1


def test_missing_secret_is_named_not_shown(drifted, cli, monkeypatch):
    monkeypatch.delenv("NOT_SET_URL", raising=False)
    write_config(drifted, webhook_channel("slack", "NOT_SET_URL"))
    result = cli("notify")
    assert result.exit_code == 4
    assert "environment variable NOT_SET_URL is not set" in result.output


def test_dry_run_prints_and_sends_nothing(drifted, cli, monkeypatch):
    with http_server() as server:
        monkeypatch.setenv("SLACK_URL", f"{server.url}/services/{SLACK_TOKEN}")
        write_config(drifted, webhook_channel("slack", "SLACK_URL"))
        result = cli("notify", "--dry-run")
    assert result.exit_code == 0
    assert server.requests == []
    assert '"type": "header"' in result.output
    assert SLACK_TOKEN not in result.output and "***" in result.output


def test_a_status_that_contradicts_the_run_is_refused(bank_workspace, cli, monkeypatch):
    """`notify --status drift` after a calm run (and `--status ok` after an alert) used to send what
    it was told: "Alert on batch" over "No drift: 0 of 16 columns drifted". Now one line, exit 2,
    nothing sent; `error` is not a verdict and is always sent."""
    with http_server() as server:
        monkeypatch.setenv("HOOK_URL", f"{server.url}/hook")
        write_config(bank_workspace, webhook_channel("webhook", "HOOK_URL", on='["drift", "warning", "ok", "error"]'))
        assert cli("generate", "--intensity", "0").exit_code == 0
        assert cli("monitor").exit_code == 0
        calm = json.loads((bank_workspace / "monitoring" / "monitoring_metrics.json").read_text())["run_id"]
        for status in ("drift", "warning"):
            result = cli("notify", "--status", status)
            assert result.exit_code == 2, result.output
            assert f"--status {status}: the run it reports on ({calm}, " in result.output
            assert "found nothing" in result.output and "not sent" in result.output
        assert cli("generate").exit_code == 0
        assert cli("monitor").exit_code == 0
        result = cli("notify", "--status", "ok")
        assert result.exit_code == 2 and "raised an alert" in result.output, result.output
        assert server.requests == []
        result = cli("notify", "--status", "drift")  # what the run found: sent
        assert result.exit_code == 0, result.output
        result = cli("notify", "--status", "error")
        assert result.exit_code == 0, result.output
        result = cli("notify", "--run-id", calm)  # the calm run's metrics were replaced since
        assert result.exit_code == 2 and f"--run-id {calm}: the latest metrics" in result.output, result.output
        result = cli("notify", "--status", "error", "--run-id", calm)  # told, without the other run's facts
        assert result.exit_code == 0, result.output
    statuses = [(r["json"]["status"], r["json"]["run_id"]) for r in server.requests]
    alert = json.loads((bank_workspace / "monitoring" / "monitoring_metrics.json").read_text())["run_id"]
    assert statuses == [("drift", alert), ("error", alert), ("error", None)]


def test_bad_status_and_no_metrics(workspace, cli):
    assert cli("notify", "--status", "loud").exit_code == 2
    result = cli("notify")
    assert result.exit_code == 2 and "run 'churnops monitor' first" in result.output
    # an explicit error status needs no metrics
    assert cli("notify", "--status", "error").exit_code == 0
    assert "pipeline error" in (workspace / "monitoring" / "notification.txt").read_text()


def test_pipeline_delivers_email_and_block_kit_then_survives_dead_servers(bank_workspace, monkeypatch, tmp_path):
    """The issue's acceptance: a drifted batch through `churnops pipeline` (a real subprocess)."""
    subprocess.run(["git", "init", "-q"], cwd=bank_workspace, check=True)
    subprocess.run(["git", "config", "user.name", "CI"], cwd=bank_workspace, check=True)
    subprocess.run(["git", "config", "user.email", "ci@example.com"], cwd=bank_workspace, check=True)
    churnops = [sys.executable, "-m", "churnops"]
    subprocess.run([*churnops, "-q", "generate"], cwd=bank_workspace, check=True)
    subprocess.run([*churnops, "-q", "dvc-setup"], cwd=bank_workspace, check=True)
    env = {"SMTP_USER": USER, "SMTP_PASSWORD": PASSWORD, "PATH": __import__("os").environ["PATH"]}
    with smtp_server("plain") as smtp, http_server() as slack:
        env["SLACK_URL"] = f"{slack.url}/services/{SLACK_TOKEN}"
        write_config(bank_workspace, email_channel(smtp.port) + webhook_channel("slack", "SLACK_URL"))
        done = subprocess.run([*churnops, "pipeline"], cwd=bank_workspace, capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Pipeline UNSTABLE" in done.stdout
    assert len(smtp.messages) == 1
    assert {p.get_filename() for p in smtp.messages[0].iter_attachments()} >= {"monitoring_report.standalone.html"}
    assert slack.requests[0]["json"]["blocks"][0]["type"] == "header"
    summary = json.loads((bank_workspace / "monitoring" / "pipeline_summary.json").read_text())
    assert [s["status"] for s in summary["stages"]] == ["success", "unstable", "success", "success", "skipped"]

    # the same pipeline with both servers gone
    before = {p.name: p.read_bytes() for p in (bank_workspace / "monitoring").glob("monitoring_*")}
    done = subprocess.run([*churnops, "pipeline"], cwd=bank_workspace, capture_output=True, text=True, env=env)
    assert done.returncode == 4, done.stdout + done.stderr
    summary = json.loads((bank_workspace / "monitoring" / "pipeline_summary.json").read_text())
    notification = summary["stages"][3]
    assert notification["status"] == "failed"
    assert "team-mail" in notification["error"] and "slack#2" in notification["error"]
    assert summary["status"] == "FAILURE" and summary["stages"][0]["status"] == "success"
    after = {p.name: p for p in (bank_workspace / "monitoring").glob("monitoring_*")}
    assert set(after) == set(before)  # every monitoring output is still there, freshly written
    assert json.loads(after["monitoring_metrics.json"].read_text())["dataset_drift"]["detected"] is True
    assert (bank_workspace / "trigger.txt").exists()
    everything = (
        done.stdout
        + done.stderr
        + "".join(p.read_text(errors="replace") for p in (bank_workspace / "monitoring").glob("*") if p.is_file())
    )
    for secret in (PASSWORD, SLACK_TOKEN, "xoxb-very-secret-token"):
        assert secret not in everything


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_webhook_that_redirects_is_a_failed_delivery_and_its_credentials_go_nowhere_else(
    drifted, cli, monkeypatch, status
):
    """urllib follows a 302 to any host with the Authorization header made from the user info;
    churnops follows none, says the address redirects, and does not show where to."""
    with http_server() as hook, http_server() as elsewhere:
        hook.responses = [status]
        hook.location = f"{elsewhere.url}/stolen/L0cationT0ken99"
        address = hook.url.removeprefix("http://")
        monkeypatch.setenv("HOOK_URL", f"http://hookuser:Pw9xLongPass@{address}/workflows/abc")
        write_config(drifted, webhook_channel("teams", "HOOK_URL"))
        result = cli("notify")
    assert result.exit_code == 4, result.output
    assert f"teams#1: failed - HTTP {status} from the server: the address redirects" in result.output
    assert "set the final address instead" in result.output
    assert elsewhere.requests == []  # nothing, credentials or message, went where the redirect pointed
    assert len(hook.requests) == 1  # a redirect is not retried
    assert hook.requests[0]["headers"]["Authorization"] == "Basic aG9va3VzZXI6UHc5eExvbmdQYXNz"
    assert "L0cationT0ken99" not in result.output and "stolen" not in result.output
    assert "Pw9xLongPass" not in result.output and "hookuser" not in result.output


def test_a_failed_stage_is_said_beside_the_alert_never_instead_of_it(drifted, cli):
    """A run whose versioning failed was told as "churnops pipeline error on ...": the alert it
    raised was only in the body. The title now leads with the alert, then says a stage failed."""
    assert cli("notify", "--status", "error").exit_code == 0
    title = (drifted / "monitoring" / "notification.txt").read_text().splitlines()[0]
    assert "Alert on bank_churn_prod.csv: " in title and title.endswith("- and a pipeline stage failed"), title
    # a failed upload of the report ([publish]) is known only after the status: said in the title too
    from churnops.integrations.notifications.message import build_notification

    document = json.loads((drifted / "monitoring" / "monitoring_metrics.json").read_text())
    note = build_notification("drift", document, ["publishing: s3://reports/run/: access denied"])
    assert note.title.startswith("Alert on bank_churn_prod.csv: ") and note.title.endswith("a pipeline stage failed")
    assert build_notification("drift", document).title.endswith("a pipeline stage failed") is False
