"""The reference profile: everything the tests need from the reference, computed once.

A profile holds, per column, its plan (role and type), its prepared sample (sorted finite
values, or category codes and labels) and its summary. ``monitor`` compares a current batch
with a profile, so a profile saved to disk lets a new batch be checked without re-reading the
reference. :meth:`ReferenceProfile.to_payload` / :meth:`from_payload` turn it into plain arrays
and JSON (no pickle) for the cache in :mod:`churnops.pipeline.profile_cache`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from churnops.monitor.columns import ColumnPlan, plan_columns
from churnops.monitor.prepare import (
    CategoricalSample,
    Coerced,
    NumericalSample,
    coerce_categorical,
    coerce_datetime,
    coerce_numerical,
)
from churnops.monitor.results import ColumnSummary
from churnops.monitor.settings import MonitorSettings
from churnops.monitor.summaries import summarize

PROFILE_FORMAT = 1


@dataclass(frozen=True)
class ColumnProfile:
    """One reference column: plan, source dtype, prepared sample and summary."""

    plan: ColumnPlan
    dtype: str
    sample: NumericalSample | CategoricalSample | None
    summary: ColumnSummary | None
    skip_reason: str | None = None


@dataclass(frozen=True)
class ReferenceProfile:
    """Profiles of every reference column, in file order."""

    rows: int
    columns: dict[str, ColumnProfile]

    def to_payload(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """A JSON-able manifest and named arrays that together rebuild the profile."""
        manifest: dict[str, Any] = {"format": PROFILE_FORMAT, "rows": self.rows, "columns": []}
        arrays: dict[str, np.ndarray] = {}
        for index, (name, column) in enumerate(self.columns.items()):
            plan = column.plan
            entry: dict[str, Any] = {
                "name": name,
                "role": plan.role,
                "column_type": plan.column_type,
                "declared": plan.declared,
                "dtype": column.dtype,
                "skip_reason": column.skip_reason,
                "sample": None,
            }
            sample = column.sample
            if isinstance(sample, NumericalSample):
                arrays[f"values_{index}"] = sample.values
                entry["sample"] = {
                    "kind": "numerical",
                    "rows": sample.rows,
                    "missing": sample.missing,
                    "infinite": sample.infinite,
                    "unparsable": sample.unparsable,
                }
            elif isinstance(sample, CategoricalSample):
                arrays[f"codes_{index}"] = sample.codes.astype(np.int32)
                entry["sample"] = {
                    "kind": "categorical",
                    "labels": sample.labels,
                    "rows": sample.rows,
                    "missing": sample.missing,
                    "unparsable": sample.unparsable,
                }
            manifest["columns"].append(entry)
        json.dumps(manifest)  # fail here, not half-way through a write, if a label is not JSON
        return manifest, arrays

    @classmethod
    def from_payload(cls, manifest: dict[str, Any], arrays: dict[str, np.ndarray]) -> ReferenceProfile:
        if manifest.get("format") != PROFILE_FORMAT:
            raise ValueError(f"unsupported profile format {manifest.get('format')!r}")
        columns: dict[str, ColumnProfile] = {}
        for index, entry in enumerate(manifest["columns"]):
            plan = ColumnPlan(entry["name"], entry["role"], entry["column_type"], entry["declared"])
            info = entry["sample"]
            sample: NumericalSample | CategoricalSample | None = None
            if info and info["kind"] == "numerical":
                sample = NumericalSample(
                    arrays[f"values_{index}"].astype(np.float64),
                    info["rows"],
                    info["missing"],
                    info["infinite"],
                    info["unparsable"],
                )
            elif info and info["kind"] == "categorical":
                sample = CategoricalSample(
                    arrays[f"codes_{index}"].astype(np.int64),
                    list(info["labels"]),
                    info["rows"],
                    info["missing"],
                    info["unparsable"],
                )
            summary = summarize(sample) if sample is not None else None
            columns[plan.name] = ColumnProfile(plan, entry["dtype"], sample, summary, entry["skip_reason"])
        return cls(int(manifest["rows"]), columns)


def coerce(series: pl.Series, column_type: str, like: pl.DataType | None = None) -> Coerced:
    """Bring a column to its monitored type (Float64 for numbers and dates)."""
    if column_type == "numerical":
        return coerce_numerical(series)
    if column_type == "datetime":
        return coerce_datetime(series)
    return coerce_categorical(series, like)


def sample_of(coerced: Coerced, column_type: str) -> NumericalSample | CategoricalSample:
    """The test sample of a coerced column."""
    if column_type in ("numerical", "datetime"):
        return NumericalSample.from_series(coerced.series, coerced.unparsable)
    return CategoricalSample.from_series(coerced.series, coerced.unparsable)


def prepare_sample(
    series: pl.Series, column_type: str, like: pl.DataType | None = None
) -> NumericalSample | CategoricalSample:
    """Coerce a column to its monitored type and prepare its sample."""
    return sample_of(coerce(series, column_type, like), column_type)


def _skip_reason(plan: ColumnPlan) -> str | None:
    if plan.role == "id":
        return "identifier"
    if plan.role == "ignored":
        return "ignored by configuration"
    if plan.column_type == "text":
        return "text column: drift of free text is not tested"
    if plan.column_type == "unknown":
        return "type could not be inferred (all values missing or unsupported type)"
    return None


def build_profile(reference: pl.DataFrame, settings: MonitorSettings) -> ReferenceProfile:
    """Plan every reference column and prepare the samples of the tested ones."""
    columns: dict[str, ColumnProfile] = {}
    for plan in plan_columns(reference, settings.declared):
        series = reference[plan.name]
        reason = _skip_reason(plan)
        sample = None
        summary = None
        if reason is None:
            sample = prepare_sample(series, plan.column_type)
            count = sample.values.size if isinstance(sample, NumericalSample) else sample.codes.size
            if count == 0:
                reason = "no usable value in the reference (all missing or unparsable)"
            summary = summarize(sample)
        columns[plan.name] = ColumnProfile(plan, str(series.dtype), sample, summary, reason)
    return ReferenceProfile(reference.height, columns)
