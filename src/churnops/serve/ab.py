"""Champion and challenger on live traffic: each arm's measured performance, the test of the
difference, and promotion.

The numbers come from the event log: every event ``POST /v1/predict`` scored keeps its arm, the
registered version that scored it and its probability; ``POST /v1/labels`` adds the outcome. An
arm is measured on the events its *current* model version scored (after a promotion, the new
champion starts from zero): the latest :data:`MAX_EVENTS` scored events, and the latest
:data:`MAX_EVENTS` labelled ones - an outcome that arrives weeks after its scoring still counts.

Each customer counts once: a customer scored many times (every visit of the app) is measured on
their latest labelled event - repeated scorings of the same customers are not independent
observations, and counting them would let a model win on a few customers seen often. Events
without the customer column (``serve.ab.key``) are left out of the comparison: they all go to
the champion, so they would make the two arms different populations.

The decision: the challenger replaces the champion when both arms have at least
``serve.ab.min_labels`` labelled customers, among them ``serve.ab.min_each_outcome`` of each
outcome (churned, stayed), and the challenger's ROC-AUC is
higher with DeLong's one-sided p-value at most ``serve.ab.level`` (the two arms are different
customers: two independent samples). Brier score and log-loss are shown, not tested.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from churnops.errors import ChurnopsError, ConfigError, InputDataError
from churnops.serve.eventlog import read_scored

logger = logging.getLogger(__name__)

MAX_EVENTS = 200_000
"""Most recent scored events read per report (both arms together), and most recent labelled ones."""
ARMS = ("champion", "challenger")
HISTOGRAM_BINS = 10
PROMOTION_TAG = "churnops.promotion"
"""The registry tag on a promoted version that says why (and the previous champion's version)."""


@dataclass(frozen=True)
class Arm:
    """An arm's model: the alias it answers to and the registered version behind it."""

    arm: str
    alias: str
    version: str


def _score_summary(scores: np.ndarray) -> dict[str, Any]:
    """How the arm's probabilities are spread: mean, quantiles and a histogram over [0, 1]."""
    if scores.size == 0:
        return {"mean": None, "quantiles": {}, "histogram": [0] * HISTOGRAM_BINS}
    points = (0.05, 0.25, 0.5, 0.75, 0.95)
    quantiles = np.quantile(scores, points)
    counts, _ = np.histogram(np.clip(scores, 0.0, 1.0), bins=HISTOGRAM_BINS, range=(0.0, 1.0))
    return {
        "mean": float(scores.mean()),
        "quantiles": {f"p{round(p * 100):02d}": float(q) for p, q in zip(points, quantiles, strict=True)},
        "histogram": [int(c) for c in counts],
    }


def measure_arm(
    scores: np.ndarray, labels: np.ndarray, events: np.ndarray | None = None, left_out: int = 0
) -> dict[str, Any]:
    """An arm's numbers: one score per customer (``scores``) and its outcome beside it
    (``labels``: 0, 1, or -1 for not labelled yet); ``events``: the scores of every event the arm
    scored (the score distribution; default ``scores``); ``left_out``: events without a customer."""
    from churnops.monitor.performance import roc_auc_with_variance

    events = scores if events is None else events
    known = labels >= 0
    outcomes, probabilities = labels[known].astype(int), scores[known]
    found: dict[str, Any] = {
        "scored": int(events.size),
        "customers": int(scores.size),
        "without_customer": int(left_out),
        "score": _score_summary(events),
        "labelled": int(known.sum()),
        "positives": int(outcomes.sum()),
        "roc_auc": None,
        "roc_auc_variance": None,
        "brier": None,
        "log_loss": None,
    }
    if outcomes.size:
        eps = np.finfo(np.float64).eps  # as scikit-learn clips
        clipped = np.clip(probabilities, eps, 1 - eps)
        found["brier"] = float(np.mean((probabilities - outcomes) ** 2))
        found["log_loss"] = float(-np.mean(outcomes * np.log(clipped) + (1 - outcomes) * np.log(1 - clipped)))
    auc, variance = roc_auc_with_variance(outcomes, probabilities)
    if math.isfinite(auc) and math.isfinite(variance):
        found["roc_auc"], found["roc_auc_variance"] = auc, variance
    return found


def decide(
    champion: dict[str, Any],
    challenger: dict[str, Any],
    level: float,
    min_labels: int,
    min_each: int = 50,
    unit: str = "customers",
) -> dict[str, Any]:
    """Whether the challenger is better: ``promote``, ``reason`` in a sentence, and the test's
    difference, z score and one-sided p-value when both ROC-AUCs are measurable.

    >>> arm = {"labelled": 5000, "positives": 900, "roc_auc": 0.80, "roc_auc_variance": 1e-5}
    >>> decide(arm, {**arm, "roc_auc": 0.84}, 0.05, 1000)["promote"]
    True
    >>> decide(arm, {**arm, "roc_auc": 0.801}, 0.05, 1000)["promote"]
    False
    """
    from churnops.monitor.performance import compare_auc

    found: dict[str, Any] = {"promote": False, "difference": None, "z": None, "p_value": None, "figures": None}
    for name, arm in (("champion", champion), ("challenger", challenger)):
        if arm["labelled"] < min_labels:
            found["reason"] = (
                f"not enough labels yet: the {name} has {arm['labelled']:,} labelled {unit} of the "
                f"{min_labels:,} needed (serve.ab.min_labels)"
            )
            return found
        fewest = min(arm["positives"], arm["labelled"] - arm["positives"])
        if fewest < min_each or arm["roc_auc"] is None:
            found["reason"] = (
                f"not enough of each outcome yet: the {name}'s labelled {unit} hold {arm['positives']:,} churned "
                f"and {arm['labelled'] - arm['positives']:,} stayed, {min_each:,} of each needed "
                "(serve.ab.min_each_outcome)"
            )
            return found
    compared = compare_auc(
        (champion["roc_auc"], champion["roc_auc_variance"]), (challenger["roc_auc"], challenger["roc_auc_variance"])
    )
    one_sided = 0.5 * math.erfc(compared["z"] / math.sqrt(2.0))  # H1: the challenger's ROC-AUC is higher
    z = compared["z"]
    found |= {"difference": compared["difference"], "z": z if math.isfinite(z) else None, "p_value": one_sided}
    p = "<1e-16" if one_sided == 0 else f"{one_sided:.2g}"  # as every p-value churnops says
    figures = (
        f"challenger ROC-AUC {challenger['roc_auc']:.4f} vs champion {champion['roc_auc']:.4f} "
        f"({compared['difference']:+.4f}, one-sided p={p}, level {level:g}; "
        f"{challenger['labelled']:,} and {champion['labelled']:,} labelled {unit})"
    )
    found["figures"] = figures[:1].upper() + figures[1:]
    found["promote"] = compared["difference"] > 0 and one_sided <= level
    found["reason"] = (
        f"the challenger is better: {figures}"
        if found["promote"]
        else f"the challenger is not significantly better: {figures}"
    )
    return found


def ab_document(
    rows: list[tuple[Any, ...]],
    arms: list[Arm],
    model: str,
    level: float,
    min_labels: int,
    min_each: int = 50,
    keyed: bool = False,
) -> dict[str, Any]:
    """The A/B report: each arm's numbers from ``rows``
    (:func:`churnops.serve.eventlog.read_scored`, newest first) and the decision. ``keyed``: the
    rows name their customer (``serve.ab.key``): each customer counts once, on their latest
    labelled event (else their latest), and events without one are left out. Without a key each
    event stands for its own customer."""
    from churnops.serve.scoring import customer_key

    measured: dict[str, Any] = {}
    for arm in arms:
        events: list[float] = []
        units: dict[Any, tuple[float, int]] = {}
        left_out = 0
        for index, row in enumerate(rows):
            found, version, probability, label = row[:4]
            if found != arm.arm or str(version) != arm.version or not _finite(probability):
                continue
            events.append(float(probability))
            outcome = int(label) if label in (0, 1) and not isinstance(label, bool) else -1
            customer = customer_key(row[4]) if keyed and len(row) > 4 else None
            if customer is None:
                if keyed:
                    left_out += 1
                    continue
                units[index] = (float(probability), outcome)
                continue
            seen = units.get(customer)
            if seen is None or (seen[1] < 0 <= outcome):  # the latest labelled event, else the latest
                units[customer] = (float(probability), outcome)
        measured[arm.arm] = {
            "alias": arm.alias,
            "version": arm.version,
            **measure_arm(
                np.asarray([u[0] for u in units.values()], dtype=np.float64),
                np.asarray([u[1] for u in units.values()], dtype=np.int64),
                np.asarray(events, dtype=np.float64),
                left_out,
            ),
        }
    document: dict[str, Any] = {
        "model": model,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "test": "DeLong, ROC-AUC of two independent groups of customers (one-sided: the challenger is better)",
        "unit": "customer" if keyed else "event",
        "level": level,
        "min_labels": min_labels,
        "min_each_outcome": min_each,
        "arms": measured,
    }
    if "champion" in measured and "challenger" in measured:
        document["decision"] = decide(
            measured["champion"],
            measured["challenger"],
            level,
            min_labels,
            min_each,
            "customers" if keyed else "events",
        )
    else:
        document["decision"] = {
            "promote": False,
            "difference": None,
            "z": None,
            "p_value": None,
            "figures": None,
            "reason": "no challenger: register one under the challenger alias to compare it on live traffic",
        }
    return document


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def open_log_for_reading(path: Path) -> sqlite3.Connection:
    """The event log, read-only and without its lock (a running service keeps writing: SQLite's
    write-ahead log lets a reader see the last committed state)."""
    from churnops.serve.eventlog import check_event_log

    if path.is_symlink():
        raise InputDataError(f"{path}: is a symbolic link; the event log is never opened through one")
    if path.exists() and not path.is_file():
        raise InputDataError(f"{path}: is not a file (serve.event_log names the service's event log file)")
    if not path.is_file():
        raise InputDataError(
            f"{path}: no event log yet - start 'churnops serve' and score customers with POST /v1/predict first"
        )
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.DatabaseError as exc:
        raise InputDataError(f"{path}: cannot read the event log ({exc})") from None
    try:
        check_event_log(db, path)
    except InputDataError:
        db.close()
        raise
    return db


def current_arms(config: Any) -> list[Arm]:
    """The registered versions behind the champion and the challenger aliases now."""
    from churnops.integrations import mlflow_registry as registry
    from churnops.pipeline.scoring import store_of

    store = store_of(config)
    found = []
    for arm, alias in (("champion", "champion"), ("challenger", config.serve.ab.challenger)):
        version = registry.find_alias(store, config.model.name, alias)
        if version is not None:
            found.append(Arm(arm, alias, version.version))
    if not found or found[0].arm != "champion":
        raise ConfigError(f"no model '{config.model.name}@champion' in the registry: run 'churnops train' first")
    return found


def customer_column(config: Any) -> str | None:
    """The column that names a customer (``serve.ab.key``, else the first of ``columns.id``)."""
    ab = config.serve.ab
    key = ab.key or (config.columns.id[0] if config.columns.id else None)
    if key is not None and '"' in key:
        raise ConfigError(
            f"serve.ab.key: {key!r} holds a double quote, which the event log cannot look up; rename the column"
        )
    return key


def report(config: Any, db: sqlite3.Connection | None = None) -> dict[str, Any]:
    """The A/B report of the configured project, from its event log (``db``: an open
    connection to it, e.g. the service's own)."""
    ab = config.serve.ab
    arms = current_arms(config)
    key = customer_column(config)
    if db is None:
        reader = open_log_for_reading(config.resolve(config.serve.event_log))
        try:
            rows = read_scored(reader, MAX_EVENTS, key)
        finally:
            reader.close()
    else:
        rows = read_scored(db, MAX_EVENTS, key)
    return ab_document(rows, arms, config.model.name, ab.level, ab.min_labels, ab.min_each_outcome, key is not None)


def promote(config: Any, document: dict[str, Any], by: str) -> str:
    """Move the aliases as ``document`` decided: the challenger's version becomes the champion,
    the champion's the ``previous-champion``, the challenger alias is removed; the reason is
    written on the promoted version in the registry. Returns the sentence said."""
    from churnops.pipeline.modeling import registry_held

    decision = document["decision"]
    if not decision["promote"]:
        raise ChurnopsError("nothing to promote: " + decision["reason"])
    with registry_held(config, "churnops ab promote"):  # the aliases checked are the ones moved
        return _promote(config, document, by)


def _promote(config: Any, document: dict[str, Any], by: str) -> str:
    from churnops.integrations import mlflow_registry as registry
    from churnops.pipeline.scoring import store_of

    decision = document["decision"]
    champion, challenger = document["arms"]["champion"], document["arms"]["challenger"]
    now = {arm.arm: arm.version for arm in current_arms(config)}
    if now.get("champion") != champion["version"] or now.get("challenger") != challenger["version"]:
        raise ConfigError(
            "the aliases moved since these numbers were measured (champion v"
            f"{now.get('champion')}, challenger v{now.get('challenger')}): measure again"
        )
    store = store_of(config)
    name = config.model.name
    said = (
        f"{name} v{challenger['version']} promoted to champion (was v{champion['version']}, now "
        f"'previous-champion') by {by}: {decision['reason']}"
    )
    _move_aliases(store, name, champion["version"], challenger["version"], challenger["alias"])
    registry.set_version_tags(
        store,
        name,
        challenger["version"],
        {
            PROMOTION_TAG: said,
            "churnops.promoted_at": document["created_at"],
            "churnops.promoted_by": by,
            "churnops.previous_champion": champion["version"],
        },
    )
    registry.log_comparison(
        store,
        "ab-promotion",
        {
            "champion_roc_auc": champion["roc_auc"],
            "challenger_roc_auc": challenger["roc_auc"],
            "p_value": decision["p_value"],
        },
        {
            "champion_version": champion["version"],
            "challenger_version": challenger["version"],
            "decision": "promoted",
            "promoted_by": by,
            "champion_labelled": str(champion["labelled"]),
            "challenger_labelled": str(challenger["labelled"]),
        },
    )
    logger.info("%s", said)
    return said


def _move_aliases(store: Any, name: str, champion: str, challenger: str, challenger_alias: str) -> None:
    """The three alias moves of a promotion. The registry has no transaction across them: when one
    fails (a locked registry), the moves already made are undone, and the error says where the
    aliases stand when even that fails - never a registry left half-promoted in silence."""
    from churnops.errors import IntegrationError
    from churnops.integrations import mlflow_registry as registry

    before = registry.aliases(store, name)
    steps = [
        ("previous-champion", champion),
        ("champion", challenger),
        (challenger_alias, None),
    ]
    done: list[str] = []
    try:
        for alias, version in steps:
            if version is None:
                registry.delete_alias(store, name, alias)
            else:
                registry.set_alias(store, name, alias, version)
            done.append(alias)
    except IntegrationError as exc:
        try:
            for alias in reversed(done):
                if alias in before:
                    registry.set_alias(store, name, alias, before[alias])
                else:
                    registry.delete_alias(store, name, alias)
        except IntegrationError:
            now = ", ".join(f"{alias} v{version}" for alias, version in sorted(registry_state(store, name).items()))
            raise IntegrationError(
                f"the promotion stopped halfway ({exc}) and the aliases could not be put back: {now or 'none'}; "
                f"point them again (champion v{champion}, {challenger_alias} v{challenger}) once the registry "
                "is free, then run 'churnops ab promote' again"
            ) from None
        raise IntegrationError(f"nothing promoted, the aliases are as they were: {exc}") from None


def registry_state(store: Any, name: str) -> dict[str, str]:
    """The model's aliases, or none when the registry cannot be read either."""
    from churnops.errors import IntegrationError
    from churnops.integrations import mlflow_registry as registry

    try:
        return registry.aliases(store, name)
    except IntegrationError:
        return {}
