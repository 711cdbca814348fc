"""The Kubernetes manifests and the image: both overlays render with ``kubectl kustomize`` and
every object passes ``kubernetes-validate`` (strict, a current Kubernetes' schemas); every
command, flag and configuration key they give churnops exists and validates; the pods run as
non-root on a read-only root filesystem with secrets from Secrets only; the alert rules are
those of ``prometheus/alerts.yml``; the image's build context holds what its install needs.
Images cannot be built or pulled here: the Dockerfile is checked, not run (deploy/README.md)."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="needs: pyyaml (pip install -e '.[dev]')")

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
OVERLAYS = ("dev", "prod")
KUBERNETES_VERSION = "1.37.0"
CRDS = {"PodMonitor", "PrometheusRule"}


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        if os.environ.get("CHURNOPS_REQUIRE_ALL"):
            pytest.fail(f"{tool} is required here (CHURNOPS_REQUIRE_ALL): apt-get install {tool}")
        pytest.skip(f"needs: {tool} (Debian package)")


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request) -> tuple[str, list[dict]]:
    _need("kubectl")
    done = subprocess.run(
        ["kubectl", "kustomize", str(KUBERNETES / "overlays" / request.param)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return request.param, [obj for obj in yaml.safe_load_all(done.stdout) if obj]


def _validator():
    if os.environ.get("CHURNOPS_REQUIRE_ALL"):
        import kubernetes_validate
    else:
        kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="needs: kubernetes-validate")
    return kubernetes_validate


def _pod_specs(objects: list[dict]) -> dict[str, dict]:
    specs = {}
    for obj in objects:
        if obj["kind"] == "CronJob":
            specs[obj["kind"]] = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif obj["kind"] in ("StatefulSet", "Deployment"):
            specs[obj["kind"]] = obj["spec"]["template"]["spec"]
    return specs


def test_every_object_of_both_overlays_is_valid_kubernetes(rendered):
    validator = _validator()
    overlay, objects = rendered
    kinds = {obj["kind"] for obj in objects}
    assert {"CronJob", "StatefulSet", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap"} <= kinds
    assert kinds >= CRDS
    namespace = {"dev": "churnops-dev", "prod": "churnops"}[overlay]
    for obj in objects:
        assert obj["metadata"]["namespace"] == namespace, obj["metadata"]
        if obj["kind"] not in CRDS:
            validator.validate(obj, KUBERNETES_VERSION, strict=True)
    # the check can fail: an unknown field, or a wrong type, is refused
    statefulset = next(obj for obj in objects if obj["kind"] == "StatefulSet")
    for breaking in ({"replica": 2}, {"replicas": "two"}):
        broken = copy.deepcopy(statefulset)
        broken["spec"].update(breaking)
        with pytest.raises(validator.ValidationError):
            validator.validate(broken, KUBERNETES_VERSION, strict=True)


def test_pods_run_unprivileged_with_secrets_only_from_secrets(rendered):
    _, objects = rendered
    specs = _pod_specs(objects)
    assert set(specs) == {"CronJob", "StatefulSet"}
    for kind, spec in specs.items():
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
            assert any(mount["mountPath"] == "/tmp" for mount in container["volumeMounts"]), kind
            for variable in container.get("env", []):
                assert "value" not in variable, f"{kind}: {variable['name']} must come from a Secret"
                assert "secretKeyRef" in variable["valueFrom"]
    serve = specs["StatefulSet"]["containers"][0]
    assert {"readinessProbe", "livenessProbe", "startupProbe"} <= set(serve)
    assert serve["readinessProbe"]["httpGet"]["path"] == "/readyz"
    cronjob = next(obj for obj in objects if obj["kind"] == "CronJob")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid" and cronjob["spec"]["jobTemplate"]["spec"]["backoffLimit"]
    service_account = next(obj for obj in objects if obj["kind"] == "ServiceAccount")
    assert service_account["automountServiceAccountToken"] is False


def test_every_command_flag_and_configuration_key_they_use_exists(rendered, tmp_path):
    import typer

    from churnops.cli import app
    from churnops.cli.common import load
    from churnops.config import load_config

    _, objects = rendered
    configmap = next(obj for obj in objects if obj["kind"] == "ConfigMap")
    (tmp_path / "churnops.toml").write_text(configmap["data"]["churnops.toml"], encoding="utf-8")
    config = load_config(tmp_path / "churnops.toml")  # every key known, every value valid
    group = typer.main.get_command(app)
    secrets_needed = set()
    for spec in _pod_specs(objects).values():
        assert any(v["name"] == "config" and v["configMap"]["name"] == configmap["metadata"]["name"]
                   for v in spec["volumes"])  # fmt: skip
        container = spec["containers"][0]
        args = list(container["args"])
        context = group.make_context("churnops", list(args))
        name, *rest = [*context._protected_args, *context.args]  # the command, then its own arguments
        command = group.get_command(context, name)
        assert command is not None, f"churnops has no command {name}"
        parsed = command.make_context(name, rest)  # an unknown flag or a bad value raises here
        sets = parsed.params.get("sets") or []
        load(tmp_path / "churnops.toml", sets=sets)  # every --set key exists and its value validates
        secrets_needed |= {v["name"] for v in container.get("env", [])}
    named = {config.serve.token_env} | {
        channel.url_env for channel in config.notify.channels if getattr(channel, "url_env", None)
    }
    assert named <= secrets_needed  # what the configuration reads from the environment is given
    for spec in _pod_specs(objects).values():  # ... and required: a missing Secret stops the pod at once
        for variable in spec["containers"][0].get("env", []):
            if variable["name"] in named:
                assert not variable["valueFrom"]["secretKeyRef"].get("optional"), variable


def test_the_alert_rules_are_prometheus_alerts_yml_and_the_monitors_match_the_pods(rendered):
    sys.path.insert(0, str(KUBERNETES))
    try:
        import sync_rules
    finally:
        sys.path.remove(str(KUBERNETES))
    assert (KUBERNETES / "base" / "prometheusrule.yaml").read_text(encoding="utf-8") == sync_rules.rendered(), (
        "run: python deploy/kubernetes/sync_rules.py"
    )
    _, objects = rendered
    rule = next(obj for obj in objects if obj["kind"] == "PrometheusRule")
    alerts = yaml.safe_load((REPO / "prometheus" / "alerts.yml").read_text(encoding="utf-8"))
    assert rule["spec"]["groups"] == alerts["groups"]  # tested by promtool in tests/test_history.py
    monitor = next(obj for obj in objects if obj["kind"] == "PodMonitor")
    statefulset = next(obj for obj in objects if obj["kind"] == "StatefulSet")
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ports = {port["name"] for port in statefulset["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert {endpoint["port"] for endpoint in monitor["spec"]["podMetricsEndpoints"]} <= ports
    headless = [obj for obj in objects if obj["kind"] == "Service" and obj["spec"].get("clusterIP") == "None"]
    assert [obj["metadata"]["name"] for obj in headless] == [statefulset["spec"]["serviceName"]]
    hpa = next(obj for obj in objects if obj["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == statefulset["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] <= statefulset["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]


def test_the_image_runs_unprivileged_and_its_build_context_installs(tmp_path):
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert sum(line.startswith("FROM ") for line in lines) >= 2  # build and runtime stages
    user = [line for line in lines if line.startswith("USER ")]
    assert user and user[-1].split()[1].split(":")[0] not in ("0", "root")
    extras = next(line for line in lines if line.startswith("ARG EXTRAS=")).split("=", 1)[1].split(",")
    import tomllib

    declared = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert set(extras) <= set(declared)
    # the build context is what .dockerignore lets through; the wheel builds from it alone
    ignore = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    kept = [entry[1:].rstrip("/") for entry in ignore if entry.startswith("!")]
    copies = [line.split()[1:-1] for line in lines if line.startswith("COPY ") and "--from" not in line]
    copied = {part for parts in copies for part in parts}
    assert copied <= set(kept), (copied, kept)
    context = tmp_path / "context"
    context.mkdir()
    for entry in kept:
        source = REPO / entry
        if source.is_dir():
            shutil.copytree(source, context / entry, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, context / entry)
    pytest.importorskip("hatchling", reason="needs: hatchling (pip install -e '.[dev]')")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "w"),
         str(context)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    wheel = next((tmp_path / "w").glob("churnops-*.whl"))
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "churnops/cli/__init__.py" in names and any(n.startswith("churnops/report/compiled/") for n in names)
