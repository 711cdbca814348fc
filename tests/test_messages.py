"""What data can do to the messages churnops sends and prints, and what secrets can leak there.

Column and file names are data: in Slack they must not ping a channel or disguise a link, in
Teams not become Markdown links, in an e-mail not add headers or links, on a terminal not move
the cursor or clear the screen, in a CSV not become a formula. Secrets - a password in a URL's
user info, a token in a path or a query, what a server echoes back - never reach the console,
the log, the pipeline summary or a notification. Real servers on 127.0.0.1, real processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from servers import free_port, http_server, smtp_server

from churnops.escape import csv_cell, header, one_line, safe_link, slack, teams, terminal
from churnops.redact import fragments, redact

CHURNOPS = [sys.executable, "-m", "churnops"]
PING = "<!channel> <http://evil.example|click here>"
LINK = "[verify your account](http://evil.example)"
ESCAPE = "Balance\x1b[2J\x1b]8;;http://evil.example\x07"
FORMULA = '=HYPERLINK("http://evil.example","x")'


def churnops(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CHURNOPS, *args], cwd=root, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600
    )


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    """A workspace whose columns are named to attack every medium, after a drifted run."""
    root = tmp_path_factory.mktemp("messages")
    rng = np.random.default_rng(3)
    names = [PING, LINK, ESCAPE, FORMULA]
    reference = pl.DataFrame({name: rng.normal(size=3000) for name in names})
    current = pl.DataFrame({name: rng.normal(2.0, size=1500) for name in names})
    reference.write_csv(root / "ref.csv")
    current.write_csv(root / "cur.csv")
    (root / "churnops.toml").write_text(
        '[paths]\nreference = "ref.csv"\nproduction = "cur.csv"\n'
        '[[notify.channels]]\ntype = "slack"\nurl_env = "SLACK_URL"\non = ["drift", "ok", "error"]\n'
        "retries = 0\n"
        '[[notify.channels]]\ntype = "teams"\nurl_env = "TEAMS_URL"\non = ["drift", "ok", "error"]\nretries = 0\n'
    )
    done = churnops(root, "monitor")
    assert done.returncode == 0, done.stderr
    return root


def test_escaping_functions_close_their_medium():
    assert "<!channel>" not in slack(PING) and "<http" not in slack(PING)
    assert "](" not in teams(LINK).replace("\\](", "")
    assert "\x1b" not in terminal(ESCAPE) and "\\x1b" in terminal(ESCAPE)
    assert csv_cell(FORMULA).startswith("'=")
    assert header("subject\r\nBcc: all@bank.example") == "subject Bcc: all@bank.example"
    for url in ("javascript:alert(1)", "data:text/html,x", "https://bank.example@evil.example/", "http://x y"):
        assert safe_link(url) is None, url
    assert one_line("a\nb\rc") == "a\\x0ab\\x0dc"


def test_slack_and_teams_show_hostile_names_as_text(hostile):
    with http_server() as server:
        env = {"SLACK_URL": f"{server.url}/services/slack", "TEAMS_URL": f"{server.url}/teams"}
        done = churnops(hostile, "notify", env=env)
        assert done.returncode == 0, done.stderr
    by_path = {r["path"]: r["json"] for r in server.requests}
    slack_payload = by_path["/services/slack"]
    flat = json.dumps(slack_payload)
    assert "<!channel>" not in flat and "<http://evil.example|" not in flat
    assert "&lt;!channel&gt;" in flat
    for block in slack_payload["blocks"]:
        for item in [block.get("text"), *block.get("fields", []), *block.get("elements", [])]:
            if isinstance(item, dict) and item.get("type") == "mrkdwn":
                assert item.get("verbatim") is True
    teams_text = json.dumps(by_path["/teams"])
    assert "[verify your account](http" not in teams_text
    assert "\\\\[verify your account\\\\]\\\\(" in teams_text
    assert "\x1b" not in flat and "\x1b" not in teams_text


def test_the_terminal_and_the_log_never_get_control_characters(hostile):
    for args in (["monitor"], ["monitor", "-v"], ["history", "--column", ESCAPE], ["notify", "--dry-run"]):
        done = churnops(hostile, *args, env={"SLACK_URL": "http://127.0.0.1:9/x", "TEAMS_URL": "http://127.0.0.1:9/y"})
        assert done.returncode in (0, 4), (args, done.stderr)
        assert "\x1b" not in done.stdout + done.stderr, args
        assert "\x07" not in done.stdout + done.stderr, args


def test_csv_outputs_neutralise_formulas_in_names_and_values(hostile):
    done = churnops(hostile, "history", "--column", FORMULA, "--format", "csv")
    assert done.returncode == 0, done.stderr
    for line in done.stdout.splitlines()[1:]:
        assert not any(cell.startswith("=") for cell in line.split(","))
    assert "'=HYPERLINK" in done.stdout


def test_a_javascript_build_url_never_becomes_a_link_in_the_email(hostile, tmp_path):
    with smtp_server("plain", auth=False, folder=tmp_path) as server:
        (hostile / "mail.toml").write_text(
            '[paths]\nreference = "ref.csv"\nproduction = "cur.csv"\n'
            f'[[notify.channels]]\ntype = "email"\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "plain"\n'
            'on = ["drift", "ok", "error"]\nretries = 0\n'
        )
        done = churnops(hostile, "notify", "--config", "mail.toml", env={"BUILD_URL": "javascript:alert(1)"})
        assert done.returncode == 0, done.stderr
    message = server.messages[0]
    html = next(part for part in message.walk() if part.get_content_type() == "text/html").get_content()
    assert 'href="javascript:' not in html and "javascript:alert(1)" in html  # shown as text only
    assert "\n" not in str(message["Subject"]).strip()


SECRET_URL = "https://hookuser:Pa55w0rdS3cret@127.0.0.1:{port}/services/T0SECRET99/B0SECRET99/abcdEFGH1234ijklMNOP?token=zz99query99"


def test_secrets_and_their_fragments_never_reach_output_summary_or_log(tmp_path, bank):
    """A webhook URL with a password, path tokens and a query token; the server echoes the path."""
    root = tmp_path / "ws"
    (root / "data").mkdir(parents=True)
    bank.head(4000).write_csv(root / "data" / "churn.csv")
    assert churnops(root, "generate", "--rows", "2000:4000").returncode == 0
    with http_server() as server:
        server.echo = True
        server.responses = [404, 404, 404]
        port = server.url.rsplit(":", 1)[1]
        url = SECRET_URL.format(port=port).replace("https://", "http://")
        (root / "churnops.toml").write_text(
            "[data]\nreference_rows = [0, 2000]\n"
            '[[notify.channels]]\ntype = "webhook"\nurl_env = "HOOK_URL"\non = ["drift", "ok", "error"]\nretries = 0\n'
            '[metrics]\npushgateway_url = "http://gwuser:GwPa55word@127.0.0.1:' + str(free_port()) + '"\n'
        )
        pipeline = churnops(root, "pipeline", env={"HOOK_URL": url})
        dry = churnops(root, "notify", "--dry-run", env={"HOOK_URL": url})
        verbose = churnops(root, "-v", "notify", env={"HOOK_URL": url})
    assert pipeline.returncode == 4, pipeline.stderr  # the channel failed, reported as a failed stage
    assert server.requests, "the webhook was called"
    summary = (root / "monitoring" / "pipeline_summary.json").read_text()
    seen = "\n".join(
        [pipeline.stdout, pipeline.stderr, dry.stdout, dry.stderr, verbose.stdout, verbose.stderr, summary]
    )
    for secret in ("Pa55w0rdS3cret", "hookuser:", "abcdEFGH1234ijklMNOP", "zz99query99", "T0SECRET99", "GwPa55word"):
        assert secret not in seen, secret
    assert "HTTP 404" in seen
    authorization = server.requests[0]["headers"]["Authorization"]
    assert authorization.startswith("Basic ")  # the user info became a header, never part of a printed URL


def test_redaction_covers_fragments_encodings_and_unknown_urls():
    secret = "https://u:topsecretpw@hooks.example/services/T0ABCDEF1/B0ABCDEF1/ZZZZyyyy1111xxxx?sig=s1g2n3d4"
    assert "topsecretpw" in fragments(secret)
    echoed = "server said: /services/T0ABCDEF1/B0ABCDEF1/ZZZZyyyy1111xxxx not found; sig=s1g2n3d4"
    cleaned = redact(echoed, [secret])
    assert "ZZZZyyyy1111xxxx" not in cleaned and "s1g2n3d4" not in cleaned and "T0ABCDEF1" not in cleaned
    encoded = "GET https%3A%2F%2Fu%3Atopsecretpw%40hooks.example failed"
    assert "topsecretpw" not in redact(encoded, [secret])
    unknown = (
        "push to http://admin:letmein99@gw:9091/x?api_key=k3y and https://h/api/v1/8f14e45fceea167a5a36dedd4bea2543"
    )
    cleaned = redact(unknown)
    assert "letmein99" not in cleaned and "k3y" not in cleaned and "8f14e45fceea167a5a36dedd4bea2543" not in cleaned


def test_a_one_character_password_does_not_garble_every_message():
    """A webhook password 'p' turned every 'p=<1e-16' of the output into '***=<1e-16'."""
    secret = "https://hook:p@hooks.example/services/x"
    assert redact("Balance: p=<1e-16 (threshold 0.05)", [secret]) == "Balance: p=<1e-16 (threshold 0.05)"
    assert redact(f"POST {secret} failed", [secret]) == "POST *** failed"


def test_credential_query_parameters_of_any_spelling_are_redacted():
    """?private_token=, accessToken=, X-Api-Key=, apitoken= with values of letters only (not
    token-like) reached the terminal, the metrics, the report and trigger.txt: only a list of
    exact names was known. Any name holding a credential's word is; other parameters stay."""
    url = (
        "https://r.example/report.html?private_token=swordfishsecret&accessToken=opensesameplease"
        "&X-Api-Key=letmeinnow&apitoken=hunterhunter&client_secret=abcabc&page=2&access_key=zzzyyy"
        "&subscription-key=qqqwww&AccessKey=rrrttt&key_id=uuuiii&lang=en"
    )
    cleaned = redact(f"report at {url}: HTTP 403")
    for secret in ("swordfishsecret", "opensesameplease", "letmeinnow", "hunterhunter", "abcabc", "zzzyyy", "qqqwww"):
        assert secret not in cleaned, cleaned
    assert "rrrttt" not in cleaned and "uuuiii" not in cleaned
    assert "page=2" in cleaned and "lang=en" in cleaned and ": HTTP 403" in cleaned


def test_every_part_of_a_url_that_can_be_secret_is_redacted_and_plain_words_stay():
    """User and password of any length, their Basic token, credential query parameters, token-like
    query values and path segments; not the words of a path, nor a file's or an object's path."""
    import base64

    from churnops.redact import forget_all, remember_url

    try:
        remember_url("redis://ruser:abc@cache.internal:6379/0")
        remember_url("redis://cache.internal:6379/0?username=quser&password=p9&db=0")
        echoed = "AUTH ruser abc; AUTH quser p9; abcdef and 0 kept; db=0"
        assert redact(echoed) == "AUTH *** ***; AUTH *** ***; abcdef and 0 kept; db=0"
    finally:
        forget_all()
    basic = base64.b64encode(b"mluser:MlPassw0rd").decode()
    secret = "http://mluser:MlPassw0rd@127.0.0.1:5000/mlflow"
    assert basic in fragments(secret)
    assert redact(f"{{'auth': 'Basic {basic}'}}", [secret]) == "{'auth': 'Basic ***'}"
    pushed = "PUT http://127.0.0.1:9091/gw/Abcdefghij12345/metrics/job/churnops?t=AbcdefSecret99 failed"
    assert redact(pushed) == "PUT http://127.0.0.1:9091/gw/***/metrics/job/churnops?t=*** failed"
    assert redact("http://gw:9091/metrics/job/churnops/instance/x") == "http://gw:9091/metrics/job/churnops/instance/x"
    kept = "sqlite:////tmp/pytest-12/mlflow.db file:///tmp/run-20240601/report.html s3://bank/batch-2024x01/part-0001"
    assert redact(kept) == kept


def test_a_user_name_that_is_a_word_is_hidden_as_a_word_only():
    """A webhook user named 'report' made every message say 'monitoring_***.html': a user name
    beside a password is hidden where it stands alone, never inside other words or file names."""
    shown = redacted_after(
        ["http://report:Xy7pQ2mLw9@127.0.0.1:18081/hook"],
        "user report refused (Xy7pQ2mLw9); see monitoring/monitoring_report.html and report.html",
    )
    assert shown == "user *** refused (***); see monitoring/monitoring_report.html and report.html", shown


def redacted_after(urls: list[str], text: str) -> str:
    """``text`` redacted once the secrets of ``urls`` are remembered, and none remembered after."""
    from churnops.redact import forget_all, remember_url

    forget_all()
    try:
        for url in urls:
            remember_url(url)
        return redact(text)
    finally:
        forget_all()


def test_redis_s_built_in_user_default_is_not_hidden_but_its_password_is():
    """``redis://default:PASSWORD@host`` is how Redis 6+ names the password of its built-in user:
    hiding 'default' as a secret garbled every '(default: ...)' of the messages."""
    shown = redacted_after(
        ["redis://default:Xy7pQ2mLw9@127.0.0.1:6379/0"],
        "AUTH default Xy7pQ2mLw9 refused; consume.group (default: churnops)",
    )
    assert shown == "AUTH default *** refused; consume.group (default: churnops)", shown


def test_credentials_written_otherwise_are_hidden_too():
    """A server answering in JSON writes 'jörg' as 'j\\u00f6rg', and a user name may come back in
    capitals: both passed unredacted."""
    shown = redacted_after(
        ["http://jörg:sécretpw99@127.0.0.1:18081/hook", "http://report:Xy7pQ2mLw9@127.0.0.1:18082/hook"],
        '{"u": "j\\u00f6rg", "p": "s\\u00e9cretpw99"}: REPORT refused, see monitoring_report.html',
    )
    assert shown == '{"u": "***", "p": "***"}: *** refused, see monitoring_report.html', shown


def test_a_url_given_where_a_file_goes_is_refused_without_its_password(tmp_path):
    """An https:// batch was cut to 'https:/' by the path's normalisation, which redaction did not
    take for a URL: 'error: https:/svc_user:Passw0rd77@...: file not found'."""
    import subprocess
    import sys

    (tmp_path / "ref.csv").write_text("a,b,y\n1,x,0\n2,y,1\n3,x,0\n")
    url = "https://svc_user:Passw0rd77@files.bank.example/batch.csv?sig=SiGnAtUrE1234"
    plain = url.split("?")[0]
    for args in (["monitor", "-r", "ref.csv", "-p", url, "-t", "y"], ["predict", "-i", plain], ["init", "-r", url]):
        done = subprocess.run([sys.executable, "-m", "churnops", *args], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 2, done.stdout + done.stderr
        said = done.stdout + done.stderr
        assert "Passw0rd77" not in said and "SiGnAtUrE1234" not in said and "svc_user" not in said, said
        said_so = ("https:// URLs are not tables churnops can read", "reads like a URL, not a file churnops can write")
        assert any(words in done.stderr for words in said_so), done.stderr
    # nor written to: the path's normalisation made a local folder named 'https:/u:password@host'
    subprocess.run([sys.executable, "-m", "churnops", "data", "init", "-n", "2000"], cwd=tmp_path, check=True)
    done = subprocess.run(
        [sys.executable, "-m", "churnops", "generate", "-o", plain], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 2 and "reads like a URL, not a file churnops can write" in done.stderr, done.stderr
    assert "Passw0rd77" not in done.stderr and not (tmp_path / "https:").exists()
    for other in ("file://svc:Passw0rd77@host/x.csv", "//svc:Passw0rd77@host/x.csv", "svc:Passw0rd77@host:/x.csv"):
        done = subprocess.run(
            [sys.executable, "-m", "churnops", "generate", "-o", other], cwd=tmp_path, capture_output=True, text=True
        )
        assert done.returncode == 2 and "Passw0rd77" not in done.stdout + done.stderr, done.stderr
    assert not any("Passw0rd77" in str(path) for path in tmp_path.rglob("*"))
    # an input at an scp-style location (user:password@host:/file), or a URL that lost its slashes:
    # the password was printed ('file not found'), and when such a folder existed, written everywhere
    import shutil

    scp = tmp_path / "svc:Passw0rd77@127.0.0.1:"
    scp.mkdir()
    shutil.copy(tmp_path / "ref.csv", scp / "x.csv")
    for args in (
        ["monitor", "-r", "ref.csv", "-p", "svc:Passw0rd77@127.0.0.1:/x.csv", "-t", "y"],
        ["monitor", "-r", "svc:Passw0rd77@127.0.0.1:/x.csv", "-p", "ref.csv", "-t", "y"],
        ["monitor", "-r", "ref.csv", "-p", "https:svc:Passw0rd77@127.0.0.1/x.csv", "-t", "y"],
        ["init", "-r", "svc:Passw0rd77@127.0.0.1:/nowhere.csv"],
    ):
        done = subprocess.run([sys.executable, "-m", "churnops", *args], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "Passw0rd77" not in done.stdout + done.stderr, done.stderr
    written = [path for path in tmp_path.rglob("*") if path.is_file() and not path.is_relative_to(scp)]
    assert not any(b"Passw0rd77" in path.read_bytes() for path in written)
    # a password holding '/' or '@'
    for location in ("svc:hunter2/Passw0rd77@host:/x.csv", "svc:hunter2@Passw0rd77@host:/x.csv"):
        done = subprocess.run(
            [sys.executable, "-m", "churnops", "monitor", "-r", "ref.csv", "-p", location, "-t", "y"],
            cwd=tmp_path, capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 2 and "Passw0rd77" not in done.stdout + done.stderr, done.stderr
        assert "hunter2" not in done.stdout + done.stderr, done.stderr
    # nor written to: an output, an init file or a configuration at such a location
    for args in (
        ["predict", "-i", "ref.csv", "-o", "svc:pa/Passw0rd77@host:/x.csv"],
        ["init", "-r", "ref.csv", "-o", "svc:Passw0rd77@host:x.toml"],
        ["monitor", "-c", "svc:pa/Passw0rd77@host:x.toml"],
    ):
        done = subprocess.run([sys.executable, "-m", "churnops", *args], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 2 and "Passw0rd77" not in done.stdout + done.stderr, done.stderr
    assert not any("Passw0rd77" in str(path) for path in tmp_path.rglob("*") if not path.is_relative_to(scp))
