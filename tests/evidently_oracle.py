"""Run Evidently 0.7.23 itself as the oracle of the agreement tests."""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd
import polars as pl

from churnops.integrations.evidently_engine import evidently_name
from churnops.monitor.engine import monitor_frames
from churnops.monitor.settings import MonitorSettings


def evidently_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    method: str | None = None,
) -> tuple[dict[str, tuple[float, bool, str]], float]:
    """{column: (drift_score, drift_detected, method)} and the drifted share, computed by Evidently."""
    from evidently import DataDefinition
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    preset = DataDriftPreset(method=evidently_name(method) if method else None)
    scores, share, _ = evidently_report(reference, current, preset, definition)
    return scores, share


def evidently_report(
    reference: pd.DataFrame, current: pd.DataFrame, preset: Any, definition: Any
) -> tuple[dict[str, tuple[float, bool, str]], float | None, bool | None]:
    """Evidently's own run of ``preset``: {column: (drift_score, drift_detected, method)}, the
    drifted share, and whether its dataset test failed (the preset's dataset verdict)."""
    from evidently import Dataset, Report

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = Report([preset], include_tests=True).run(
            current_data=Dataset.from_pandas(current, data_definition=definition),
            reference_data=Dataset.from_pandas(reference, data_definition=definition),
        )
    document = snapshot.dict()
    scores, share, dataset_drifted = {}, None, None
    for metric in document["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            scores[config["column"]] = [float(metric["value"]), None, config["method"]]
        elif config["type"].endswith("DriftedColumnsCount"):
            share = metric["value"]["share"]
    for test in document["tests"]:
        params = test["metric_config"]["params"]
        if params["type"].endswith("ValueDrift"):
            scores[params["column"]][1] = test["status"] == "FAIL"
        elif params["type"].endswith("DriftedColumnsCount"):
            dataset_drifted = test["status"] == "FAIL"
    return {k: tuple(v) for k, v in scores.items()}, share, dataset_drifted


def churnops_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    method: str | None = None,
) -> tuple[dict[str, tuple[float, bool, str]], float]:
    """The same comparison by the native engine."""
    declared = {name: "numerical" for name in numerical} | {name: "categorical" for name in categorical}
    settings = MonitorSettings(declared_types=declared, target=None, method=method)
    result = monitor_frames(pl.from_pandas(reference), pl.from_pandas(current), settings)
    return {c.name: (c.drift_score, c.drift_detected, c.test) for c in result.columns}, result.dataset_drift.score
