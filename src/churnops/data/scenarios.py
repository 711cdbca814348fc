"""Drift scenarios: named lists of per-column operations applied to a production batch.

``intensity`` scales every shift: a factor ``f`` becomes ``1 + (f - 1) * intensity``, an amount
or a share is multiplied by it, and ``clip`` bounds stay as they are. Intensity 0 returns the
rows unchanged (a no-drift control batch); the seed's ``DRIFT_INTENSITY`` maps onto it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl

from churnops.errors import ConfigError, InputDataError


@dataclass(frozen=True)
class Operation:
    """One drift operation. Which fields matter depends on ``op``."""

    op: str
    column: str
    factor: float | None = None
    amount: float | None = None
    min: float | None = None
    max: float | None = None
    share: float | None = None
    to: str | None = None
    value: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


SEED_SCENARIO = (
    Operation("scale", "Balance", factor=1.20),
    Operation("shift", "Credit Score", amount=-15),
    Operation("clip", "Credit Score", min=300, max=850),
    Operation("scale", "Income", factor=1.10),
    Operation("target_rate", "Churn Flag", amount=0.045),
)
STRONG_SCENARIO = (
    Operation("scale", "Balance", factor=1.50),
    Operation("shift", "Credit Score", amount=-40),
    Operation("clip", "Credit Score", min=300, max=850),
    Operation("scale", "Income", factor=1.25),
    Operation("remix", "Customer Segment", share=0.30, to="SME"),
    Operation("new_category", "Preferred Communication Channel", share=0.10, value="Chatbot"),
    Operation("missing", "Outstanding Loans", share=0.05),
    Operation("target_rate", "Churn Flag", amount=0.10),
)
COVARIATE_SCENARIO = (Operation("resample", "Credit Score", factor=0.8),)
"""Covariate shift only: rows re-drawn (with their labels) towards higher credit scores."""
CORRELATION_SCENARIO = (Operation("decouple", "Income", share=1.0),)
"""Dependence drift: Income no longer follows education, occupation, age or balances (its values
are shuffled across the rows), while every column keeps exactly its distribution - only tests
that look at several columns together can see it."""
CONCEPT_SCENARIO = (Operation("concept", "Churn Flag", share=1.0),)
"""Concept drift: the churn mechanism itself changes (see :func:`concept_labels`)."""
BUILTIN_SCENARIOS: dict[str, tuple[Operation, ...]] = {
    "none": (),
    "seed": SEED_SCENARIO,
    "strong": STRONG_SCENARIO,
    "covariate": COVARIATE_SCENARIO,
    "concept": CONCEPT_SCENARIO,
    "correlation": CORRELATION_SCENARIO,
}


def resolve_scenario(name: str, custom: dict[str, list[Any]] | None = None) -> tuple[Operation, ...]:
    """The operations of a built-in or configured scenario.

    >>> [op.column for op in resolve_scenario("seed")][:2]
    ['Balance', 'Credit Score']
    """
    custom = custom or {}
    if name in custom:
        return tuple(op if isinstance(op, Operation) else Operation(**op.model_dump()) for op in custom[name])
    if name in BUILTIN_SCENARIOS:
        return BUILTIN_SCENARIOS[name]
    known = sorted(set(BUILTIN_SCENARIOS) | set(custom))
    raise ConfigError(f"scenario.name: unknown scenario '{name}'; known: {', '.join(known)}")


@dataclass(frozen=True)
class ScenarioOutcome:
    """What applying a scenario did, for the batch's metadata sidecar."""

    operations: list[dict[str, Any]]
    effects: dict[str, dict[str, Any]] = field(default_factory=dict)


def _is_integer(series: pl.Series) -> bool:
    return series.dtype.is_integer()


def _numeric(frame: pl.DataFrame, op: Operation) -> pl.Series:
    series = frame[op.column]
    if not series.dtype.is_numeric():
        raise InputDataError(
            f"scenario operation '{op.op}' needs a numeric column, but '{op.column}' is {series.dtype}"
        )
    return series


def _keep_dtype(result: pl.Series, original: pl.Series) -> pl.Series:
    if _is_integer(original):
        return result.round(0).cast(original.dtype)
    return result


def _choose(rng: np.random.Generator, candidates: np.ndarray, share: float, n: int) -> np.ndarray:
    """Row indices, ``round(share * n)`` of them (at most all candidates), chosen at random."""
    k = min(len(candidates), int(round(share * n)))
    return np.sort(rng.choice(candidates, size=k, replace=False)) if k else candidates[:0]


def _set_rows(series: pl.Series, rows: np.ndarray, value: Any) -> pl.Series:
    mask = np.zeros(len(series), dtype=bool)
    mask[rows] = True
    return (
        pl.DataFrame({"v": series, "m": mask})
        .select(pl.when(pl.col("m")).then(pl.lit(value)).otherwise(pl.col("v")).alias(series.name))
        .to_series()
    )


def apply_operation(
    frame: pl.DataFrame, op: Operation, intensity: float, rng: np.random.Generator
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Apply one operation; return the new frame and a record of its effect."""
    if op.column not in frame.columns:
        raise InputDataError(f"scenario needs column '{op.column}', which the data does not have")
    n = frame.height
    effect: dict[str, Any] = {"op": op.op}
    if op.op == "scale":
        series = _numeric(frame, op)
        factor = 1.0 + (float(op.factor) - 1.0) * intensity  # type: ignore[arg-type]
        new = _keep_dtype(series * factor, series)
        effect["factor"] = factor
    elif op.op == "shift":
        series = _numeric(frame, op)
        amount = float(op.amount) * intensity  # type: ignore[arg-type]
        new = _keep_dtype(series + amount, series)
        effect["amount"] = amount
    elif op.op == "clip":
        series = _numeric(frame, op)
        new = series.clip(op.min, op.max)
        effect["clipped_rows"] = int((new != series).sum())
        new = _keep_dtype(new, series)
    elif op.op == "remix":
        series = frame[op.column]
        target = _cast_value(series, op.to)
        candidates = np.flatnonzero((series != target).fill_null(True).to_numpy())
        rows = _choose(rng, candidates, float(op.share) * intensity, n)  # type: ignore[arg-type]
        new = _set_rows(series, rows, target)
        effect["moved_rows"] = len(rows)
    elif op.op == "missing":
        series = frame[op.column]
        candidates = np.flatnonzero(series.is_not_null().to_numpy())
        rows = _choose(rng, candidates, float(op.share) * intensity, n)  # type: ignore[arg-type]
        new = _set_rows(series, rows, None)
        effect["missing_rows"] = len(rows)
    elif op.op == "new_category":
        series = frame[op.column]
        value = _cast_value(series, op.value)
        rows = _choose(rng, np.arange(n), float(op.share) * intensity, n)  # type: ignore[arg-type]
        new = _set_rows(series, rows, value)
        effect["changed_rows"] = len(rows)
    elif op.op == "decouple":
        # a permutation of the column's values among a share of the rows: its distribution is
        # unchanged, its relation to every other column is broken on those rows
        series = frame[op.column]
        share = (1.0 if op.share is None else float(op.share)) * intensity
        rows = _choose(rng, np.arange(n), min(share, 1.0), n)
        new = series.scatter(rows, series.gather(rng.permutation(rows))) if len(rows) > 1 else series
        effect["decoupled_rows"] = len(rows)
    elif op.op == "target_rate":
        new, effect = _target_rate(frame, op, intensity, rng)
    elif op.op == "resample":
        return _resample(frame, op, intensity, rng)
    elif op.op == "concept":
        new, effect = _concept(frame, op, intensity, rng)
    else:  # pragma: no cover - pydantic and resolve_scenario only admit the names above
        raise ConfigError(f"unknown scenario operation '{op.op}'")
    return frame.with_columns(new.alias(op.column)), effect


def _cast_value(series: pl.Series, value: str | None) -> Any:
    if value is None or series.dtype == pl.String:
        return value
    try:
        return pl.Series([value]).cast(series.dtype).item()
    except pl.exceptions.PolarsError:
        raise InputDataError(f"value '{value}' does not fit column '{series.name}' of type {series.dtype}") from None


def _target_rate(
    frame: pl.DataFrame, op: Operation, intensity: float, rng: np.random.Generator
) -> tuple[pl.Series, dict[str, Any]]:
    """Raise (or lower) the positive rate of a two-valued label by flipping labels at random.

    The label is 0/1 (or true/false), or two words of which ``op.value`` names the positive one
    (``generate`` gives ``columns.target_positive``); rows without a label keep none.
    """
    series = frame[op.column]
    labelled = series.is_not_null().to_numpy()
    present = series.drop_nulls()
    if op.value is None:
        if not present.dtype.is_numeric() and present.dtype != pl.Boolean:
            shown = ", ".join(repr(str(v)) for v in present.unique(maintain_order=True).head(2).to_list())
            raise InputDataError(
                f"target_rate: the labels of '{op.column}' are not 0/1 ({shown}): name the positive one - "
                'columns.target_positive, or value = "..." in the operation'
            )
        values = present.cast(pl.Float64).to_numpy()
        if not set(np.unique(values).tolist()) <= {0.0, 1.0}:
            raise InputDataError(f"target_rate needs a 0/1 column, but '{op.column}' has other values")
        positive, negative = (1, 0) if present.dtype.is_numeric() else (True, False)
    else:
        positive = _cast_value(series, op.value)
        others = present.filter(present != positive).unique(maintain_order=True)
        if len(others) > 1 or not len(present):
            found = "no label" if not len(present) else f"{len(others) + 1} or more values"
            raise InputDataError(
                f"target_rate needs a label of two values, but '{op.column}' has {found} (positive: {op.value!r})"
            )
        negative = others.item() if len(others) else None
    is_positive = (present == positive).to_numpy()
    n = len(is_positive)
    delta = float(op.amount) * intensity  # type: ignore[arg-type]
    before = float(is_positive.mean()) if n else 0.0
    flip_from = delta < 0  # negatives become positive to raise the rate
    candidates = np.flatnonzero(is_positive == flip_from)
    rows = _choose(rng, candidates, abs(delta), n)
    if len(rows) and negative is None:
        raise InputDataError(
            f"target_rate: every label of '{op.column}' is {op.value!r}, so there is no other label to flip to"
        )
    new_positive = is_positive.copy()
    new_positive[rows] = not flip_from
    after = float(new_positive.mean()) if n else 0.0
    effect = {
        "op": op.op,
        "requested_change": delta,
        "rate_before": before,
        "rate_after": after,
        "achieved_change": after - before,
        "flipped_rows": len(rows),
    }
    flipped = np.flatnonzero(labelled)[rows]  # positions in the whole column
    if not len(flipped):
        return series, effect
    to = pl.Series([positive if not flip_from else negative]).cast(series.dtype)
    return series.scatter(flipped, to.gather(np.zeros(len(flipped), dtype=np.int64))), effect


def _resample(
    frame: pl.DataFrame, op: Operation, intensity: float, rng: np.random.Generator
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Covariate shift: draw rows (labels kept) with weights exp(k * z(column)), z the standardized column.

    Without ``share``, as many rows as there are, with replacement; with ``share``, that share of
    the rows without replacement (no duplicates: use it on a large input).
    """
    values = _numeric(frame, op).cast(pl.Float64).to_numpy()
    strength = float(op.factor) * intensity  # type: ignore[arg-type]
    finite = np.isfinite(values)
    z = np.zeros(len(values))
    if finite.any() and np.std(values[finite]) > 0:
        z[finite] = (values[finite] - np.mean(values[finite])) / np.std(values[finite])
    weights = np.exp(np.clip(strength * z, -30, 30))
    if op.share is None:
        size, replace = len(values), True
    else:
        size, replace = max(int(round(op.share * len(values))), 1), False
    rows = np.sort(rng.choice(len(values), size=size, replace=replace, p=weights / weights.sum()))
    effect = {"op": "resample", "strength": strength, "distinct_rows": int(len(np.unique(rows)))}
    return frame[rows], effect


CONCEPT_DRIVERS = ("NumOfProducts", "NumComplaints", "Credit Score", "Customer Tenure", "Customer Segment")


def concept_labels(frame: pl.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Churn labels from a *different* mechanism than the generator's (bank schema only).

    log-odds = -1.3 - 0.9 [products = 1] + 1.1 [products = 2] - 0.35 complaints
               + 0.012 (Credit Score - 650) - 0.05 (tenure - 5) + 1.0 [segment = "Corporate"]

    Single-product customers and complainers now stay, two-product customers and good credit
    scores leave: a model of the old mechanism ranks customers almost backwards.
    """
    missing = [c for c in CONCEPT_DRIVERS if c not in frame.columns]
    if missing:
        raise InputDataError(f"the 'concept' operation needs the bank columns {', '.join(missing)}")
    products = frame["NumOfProducts"].to_numpy()
    z = (
        -1.3
        - 0.9 * (products == 1)
        + 1.1 * (products == 2)
        - 0.35 * frame["NumComplaints"].to_numpy()
        + 0.012 * (frame["Credit Score"].to_numpy() - 650)
        - 0.05 * (frame["Customer Tenure"].to_numpy() - 5)
        + 1.0 * (frame["Customer Segment"] == "Corporate").to_numpy()
    )
    return (rng.random(frame.height) < 1.0 / (1.0 + np.exp(-z))).astype(np.int64)


def _concept(
    frame: pl.DataFrame, op: Operation, intensity: float, rng: np.random.Generator
) -> tuple[pl.Series, dict[str, Any]]:
    series = frame[op.column]
    share = float(op.share if op.share is not None else 1.0) * intensity
    new_labels = concept_labels(frame, rng)
    replace = rng.random(frame.height) < share
    values = np.where(replace, new_labels, series.to_numpy())
    effect = {
        "op": "concept",
        "share": share,
        "relabelled_rows": int(replace.sum()),
        "rate_before": float(series.mean()),
        "rate_after": float(values.mean()),
    }
    return pl.Series(op.column, values, dtype=series.dtype), effect


def with_positive_label(
    operations: tuple[Operation, ...], target: str | None, positive: str | None
) -> tuple[Operation, ...]:
    """The operations with the target's positive label (``columns.target_positive``) given to each
    ``target_rate`` on the target that names none: labels written as words then drift too.

    >>> with_positive_label((Operation("target_rate", "y", amount=0.1),), "y", "Yes")[0].value
    'Yes'
    """
    if target is None or positive is None:
        return operations
    return tuple(
        replace(op, value=positive) if op.op == "target_rate" and op.column == target and op.value is None else op
        for op in operations
    )


def apply_scenario(
    frame: pl.DataFrame, operations: tuple[Operation, ...], intensity: float, seed: int
) -> tuple[pl.DataFrame, ScenarioOutcome]:
    """Apply every operation in order with one seeded generator.

    Examples
    --------
    >>> df = pl.DataFrame({"Balance": [0.0, 100.0, 200.0]})
    >>> out, _ = apply_scenario(df, (Operation("scale", "Balance", factor=1.2),), 1.0, seed=0)
    >>> out["Balance"].to_list()
    [0.0, 120.0, 240.0]
    """
    rng = np.random.default_rng(seed)
    effects: dict[str, dict[str, Any]] = {}
    for index, op in enumerate(operations):
        frame, effect = apply_operation(frame, op, intensity, rng)
        effects[f"{index}:{op.op}:{op.column}"] = effect
    return frame, ScenarioOutcome([op.to_dict() for op in operations], effects)
