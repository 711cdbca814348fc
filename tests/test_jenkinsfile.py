"""Keep jenkins/Jenkinsfile honest without Jenkins: it compiles, and its steps do what `churnops pipeline` does."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
JENKINSFILE = REPO / "jenkins" / "Jenkinsfile"
DRIFT = "env.DRIFT_DETECTED == 'true'"


def java_home() -> str | None:
    java = shutil.which("java")
    return str(Path(java).resolve().parents[1]) if java else None


def test_jenkinsfile_compiles_with_groovy(tmp_path):
    groovyc = shutil.which("groovyc")
    if groovyc is None or java_home() is None:
        pytest.skip("needs: groovyc (apt-get install groovy) and a JDK")
    source = tmp_path / "Jenkinsfile.groovy"
    source.write_text(JENKINSFILE.read_text())
    env = {**os.environ, "JAVA_HOME": os.environ.get("JAVA_HOME") or java_home()}
    done = subprocess.run(
        [groovyc, "-d", str(tmp_path / "classes"), str(source)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    broken = tmp_path / "Broken.groovy"
    broken.write_text(JENKINSFILE.read_text().replace("stage('Check Data Drift') {", "stage('Check Data Drift' {"))
    done = subprocess.run(
        [groovyc, "-d", str(tmp_path / "classes"), str(broken)], capture_output=True, text=True, env=env
    )
    assert done.returncode != 0  # the check does catch syntax errors


def test_jenkinsfile_has_the_seed_structure():
    text = JENKINSFILE.read_text()
    for needle in (
        "cron('H 2 * * *')",
        "archiveArtifacts artifacts: 'monitoring/*.html, monitoring/*.css, monitoring/*.json'",
        "publishHTML(",
        "unstable(",
        f"expression {{ {DRIFT} }}",
        "emailext(",
        "isUnix()",
        "post {",
        "parameters {",
    ):
        assert needle in text, needle
    assert "python" not in text.lower().replace("no inline python", "")  # every step is the churnops CLI
    assert [name for name in re.findall(r"stage\('([^']+)'\)", text)] == [
        "Data Drift Monitoring",
        "Check Data Drift",
        "DVC Versioning",
        "Notification",
    ]


def test_a_failed_build_never_publishes_the_previous_builds_outputs():
    """A monitoring step that fails changes no output: archiving and publishing them 'always' made
    the previous build's report and trigger.txt this failed build's own."""
    text = JENKINSFILE.read_text()
    monitoring = block_after(text, text.index("stage('Data Drift Monitoring')"))
    post = block_after(monitoring, monitoring.index("post {"))
    assert "always {" not in post and "failure {" not in post
    success = block_after(post, post.index("success {"))
    assert "archiveArtifacts artifacts: 'monitoring/" in success and "publishHTML(" in success
    check = block_after(text, text.index("stage('Check Data Drift')"))
    drifted = block_after(check, check.index("if (fileExists('trigger.txt'))"))
    assert "archiveArtifacts artifacts: 'trigger.txt'" in drifted
    assert text.count("trigger.txt'") == text.count("fileExists('trigger.txt')") + drifted.count("trigger.txt'")


def block_after(text: str, start: int) -> str:
    """The text of the brace block opening at or after ``start``."""
    opening = text.index("{", start)
    depth = 0
    for index in range(opening, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[opening + 1 : index]
    raise AssertionError("unbalanced braces")


def jenkins_environment(text: str) -> dict[str, str]:
    params = dict(re.findall(r"string\(name: '(\w+)', defaultValue: '([^']*)'", text))
    env_block = block_after(text, text.index("environment {"))
    env = {}
    for name, single, double in re.findall(r"(\w+) = (?:'([^']*)'|\"([^\"]*)\")", env_block):
        env[name] = re.sub(r"\$\{params\.(\w+)\}", lambda m: params[m.group(1)], single or double)
    return env


def steps(text: str) -> list[tuple[str, str, list[str]]]:
    """(stage, condition, churnops arguments) in order; condition is always, drift or no-drift."""
    env = jenkins_environment(text)
    plan = []
    for match in re.finditer(r"stage\('([^']+)'\)", text):
        name, body = match.group(1), block_after(text, match.end())

        def calls(fragment: str) -> list[str]:
            found = re.findall(r"churnops\((?:'([^']*)'|\"([^\"]*)\")\)", fragment)
            # variables the build sets while it runs (CHURNOPS_RUN_ID) stay for the replay to fill
            known = lambda m: env.get(m.group(1), m.group(0))  # noqa: E731
            return [re.sub(r"\$\{env\.(\w+)\}", known, a or b) for a, b in found]

        if f"expression {{ {DRIFT} }}" in body:
            plan.append((name, "drift", calls(body)))
        elif f"if ({DRIFT})" in body:
            drift_branch, _, ok_branch = body.partition("} else {")
            plan.append((name, "drift", calls(drift_branch)))
            plan.append((name, "no-drift", calls(ok_branch)))
        else:
            plan.append((name, "always", calls(body)))
    return plan


RUN_ID_FILE = ".churnops-run-id"


def run_id_of_this_build(root: Path) -> str:
    """What the Jenkinsfile's runIdOfThisBuild() reads: the file its monitoring step wrote."""
    run_id = (root / RUN_ID_FILE).read_text().strip()
    assert re.fullmatch(r"[0-9A-Za-z-]+", run_id)
    return run_id


def replay(root: Path, plan, after: str | None = None, between=None) -> list[tuple[str, int, str]]:
    """Run the plan's churnops steps as Jenkins would, in ``root``; ``between(root)`` runs after
    the stage ``after`` (another process using the workspace). (argument, exit code, output)."""
    ran = []
    drifted = run_id = None
    for stage, condition, arguments in plan:
        if stage == "Check Data Drift":
            drifted = (root / "trigger.txt").exists()  # fileExists('trigger.txt')
        if condition == "drift" and not drifted or condition == "no-drift" and drifted:
            continue
        for argument in arguments:
            argument = argument.replace("${env.CHURNOPS_RUN_ID}", str(run_id)).replace("${RUN_ID_FILE}", RUN_ID_FILE)
            done = subprocess.run(
                [sys.executable, "-m", "churnops", *shlex.split(argument)], cwd=root, capture_output=True, text=True
            )
            ran.append((argument, done.returncode, done.stdout + done.stderr))
            if done.returncode != 0:
                return ran  # the build fails here
        if stage == "Data Drift Monitoring":
            if after == "the monitoring command" and between is not None:  # before the id is read
                between(root)
                between = None
            run_id = run_id_of_this_build(root)  # env.CHURNOPS_RUN_ID = runIdOfThisBuild()
        if stage == after and between is not None:
            between(root)
            between = None
    return ran


def make_workspace(root: Path, bank) -> Path:
    root.mkdir()
    (root / "data").mkdir()
    bank.write_csv(root / "data" / "churn.csv")
    for args in (["init", "-q"], ["config", "user.name", "Jenkins"], ["config", "user.email", "jenkins@example.com"]):
        subprocess.run(["git", *args], cwd=root, check=True)
    (root / ".gitignore").write_text("/data/churn.csv\n/monitoring/\n/trigger.txt\n/.churnops/\n")
    churnops = [sys.executable, "-m", "churnops", "-q"]
    subprocess.run([*churnops, "generate"], cwd=root, check=True)
    subprocess.run([*churnops, "dvc-setup"], cwd=root, check=True)
    return root


def test_replaying_the_jenkinsfile_steps_gives_what_churnops_pipeline_gives(tmp_path, bank, monkeypatch):
    pytest.importorskip("dvc", reason="needs: dvc")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "none"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    plan = steps(JENKINSFILE.read_text())
    thresholds = (
        "--set thresholds.dataset_drift=0.1 --set thresholds.column_drift=0.1 --set thresholds.data_quality=0.95"
    )
    assert plan[0] == ("Data Drift Monitoring", "always", [f"monitor {thresholds} --run-id-file ${{RUN_ID_FILE}}"])
    assert ("DVC Versioning", "drift", ["version --run-id ${env.CHURNOPS_RUN_ID}"]) in plan
    assert ("Notification", "drift", ["notify --status drift --run-id ${env.CHURNOPS_RUN_ID}"]) in plan
    assert ("Notification", "no-drift", ["notify --run-id ${env.CHURNOPS_RUN_ID}"]) in plan

    jenkins = make_workspace(tmp_path / "jenkins", bank)
    ran = replay(jenkins, plan)
    assert all(code == 0 for _, code, _ in ran), ran
    assert [argument.split()[0] for argument, _, _ in ran] == ["monitor", "version", "notify"]

    cli = make_workspace(tmp_path / "cli", bank)
    done = subprocess.run([sys.executable, "-m", "churnops", "pipeline"], cwd=cli, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr

    def facts(root: Path) -> dict:
        metrics = json.loads((root / "monitoring" / "monitoring_metrics.json").read_text())
        last = subprocess.run(["git", "log", "-1", "--format=%B"], cwd=root, capture_output=True, text=True).stdout
        return {
            "drifted": metrics["dataset_drift"]["drifted_columns"],
            "score": metrics["dataset_drift"]["score"],
            "statistics": {k: v["statistic"] for k, v in metrics["columns"].items()},
            "trigger": (root / "trigger.txt").exists(),
            "versioned_sha": re.search(r"churnops-sha256: (\w+)", last).group(1),
            "pushed": any((root / "dvc_storage").rglob("*")),
            "notification": (root / "monitoring" / "notification.txt").read_text().splitlines()[0],
        }

    assert facts(jenkins) == facts(cli)


@pytest.mark.parametrize(
    ("after", "refused"),
    [
        ("Check Data Drift", "version --run-id"),
        ("Data Drift Monitoring", "notify --run-id"),
        # between the monitoring command and the reading of its run id: the id came from the
        # latest metrics, which were then the other run's, and the build sent its "No alert"
        ("the monitoring command", "notify --run-id"),
    ],
)
def test_a_run_made_between_the_jenkins_stages_is_never_reported_as_the_builds(
    tmp_path, bank, monkeypatch, after, refused
):
    """Someone monitors a calm batch in the job's workspace after the monitoring stage found drift:
    the build's next churnops step refuses (exit 2, the build fails), nothing is committed or
    sent - where the steps used to version paths.production and send "drift" (or "ok") with the
    calm run's facts."""
    pytest.importorskip("dvc", reason="needs: dvc")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "none"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    jenkins = make_workspace(tmp_path / "jenkins", bank)
    calm = tmp_path / "calm.csv"
    subprocess.run(
        [sys.executable, "-m", "churnops", "-q", "generate", "--intensity", "0", "-o", str(calm)],
        cwd=jenkins,
        check=True,
    )
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=jenkins, capture_output=True, text=True).stdout

    def another_run(root: Path) -> None:
        subprocess.run([sys.executable, "-m", "churnops", "-q", "monitor", "-p", str(calm)], cwd=root, check=True)

    ran = replay(jenkins, steps(JENKINSFILE.read_text()), after, another_run)
    argument, code, output = ran[-1]
    assert argument.startswith(refused) and code == 2, ran
    assert "another run wrote them since" in output and ("nothing versioned" in output or "not sent" in output)
    assert subprocess.run(["git", "rev-parse", "HEAD"], cwd=jenkins, capture_output=True, text=True).stdout == head
    assert not (jenkins / "monitoring" / "notification.txt").exists()


def test_the_run_id_file_never_replaces_a_file_churnops_reads_or_writes(tmp_path):
    """--run-id-file monitoring/monitoring_metrics.json replaced the metrics with the run's id;
    trigger.txt made a calm run look like an alert to Jenkins; the batch or the reference could be
    overwritten. Such paths are refused before the run; another path gets the run's id."""
    churnops = [sys.executable, "-m", "churnops", "-q"]
    subprocess.run([*churnops, "data", "init"], cwd=tmp_path, check=True)
    subprocess.run([*churnops, "generate"], cwd=tmp_path, check=True)
    for taken in ("monitoring/monitoring_metrics.json", "trigger.txt", "data/churn.csv", "monitoring/ours.txt"):
        done = subprocess.run(
            [*churnops, "monitor", "--run-id-file", taken], cwd=tmp_path, capture_output=True, text=True
        )
        assert done.returncode == 2 and "--run-id-file" in done.stderr, (taken, done.stderr)
    done = subprocess.run(
        [*churnops, "monitor", "--run-id-file", RUN_ID_FILE], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "monitoring" / "monitoring_metrics.json").read_text())
    assert run_id_of_this_build(tmp_path) == metrics["run_id"]
