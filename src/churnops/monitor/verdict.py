"""One verdict for a run: what it found, in order of severity, and whether it raises the trigger.

A run can find several things: the feature data drifted (the seed's rule: the share of drifted
columns above ``thresholds.dataset_drift``), the churn rate moved, the model decayed or its
predictions drifted, the batch's quality fell below its threshold. Each finding is a
:class:`Reason` of one *signal* (``data``, ``target``, ``model``, ``quality``). Signals listed in
``thresholds.trigger_on`` raise the trigger (an *alert*); the others are reported as warnings.
The CLI's summary line, the report's banner and "What next", ``trigger.txt``, the notification
and the exit code of ``--fail-on-drift`` all come from this one verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from churnops.escape import one_line_short, plural
from churnops.monitor.results import DEFAULT_TRIGGER_ON, FEW_ROWS, SIGNALS, MonitoringResult, Reason, Verdict

# Within a severity, findings about the model come first (a dead model is the costliest thing to
# miss), then the label, then the inputs, then the data's quality.
_ORDER = {
    "few rows": -1,
    "model decay": 0,
    "model unchecked": 1,
    "target": 2,
    "data": 3,
    "columns": 3,
    "segment": 4,
    "chunk": 5,
    "multivariate": 6,
    "prediction": 7,
    "segment values": 8,
    "chunk dates": 9,
    "quality": 10,
}


def _columns(n: int) -> str:
    """``n`` columns, one column."""
    return f"{n:,} {plural(n, 'column', 'columns')}"


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _p(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return "<1e-16" if value == 0 else f"{value:.2g}"


def drifted_apart(result: MonitoringResult) -> tuple[list[str], list[str]]:
    """The drifted columns found changed, and those the batch holds no usable value of (every
    cell missing or unreadable: decimal commas, an emptied column), which count as drifted but
    were not read - named apart, so that they are not taken for changed values.

    >>> from churnops.monitor.results import example_result
    >>> drifted_apart(example_result(drifted=2, columns=4))
    (['c0', 'c1'], [])
    """
    unread = {c.name for c in result.columns if c.test == "none" and c.drift_detected}
    drifted = result.dataset_drift.drifted_columns
    return [n for n in drifted if n not in unread], [n for n in drifted if n in unread]


def _drifted_names(changed: list[str], gone: list[str], show: Callable[[str], str] = str) -> str:
    """The drifted columns of a finding, the first five of each kind: those changed, then those
    with no usable value in the batch (``Balance; no usable value in the batch: Income``).

    >>> _drifted_names(["a", "b"], ["c"])
    'a, b; no usable value in the batch: c'
    """

    def listed(names: list[str]) -> str:
        return ", ".join(show(name) for name in names[:5]) + (", ..." if len(names) > 5 else "")

    unread = f"no usable value in the batch: {listed(gone)}" if gone else ""
    return "; ".join(part for part in (listed(changed), unread) if part)


def _findings(result: MonitoringResult) -> list[tuple[str, str, str]]:
    """(signal, kind, message) of everything the run found, unordered."""
    found: list[tuple[str, str, str]] = []
    drift = result.dataset_drift
    if drift.detected:
        names = _drifted_names(*drifted_apart(result))
        found.append(
            (
                "data",
                "data",
                f"data drift: {len(drift.drifted_columns)} of {_columns(drift.n_columns)} drifted "
                f"(score {drift.score:.3f} > {drift.threshold:g}): {names}",
            )
        )
    elif drift.drifted_columns and drift.n_columns:
        # a column drifted, too few for the dataset's alarm (the original project's rule: more than
        # 10% of the columns): said as a warning, never an alert - a column that moved a lot sat
        # under "OK" with "Nothing to do"
        changed, gone = drifted_apart(result)
        if changed:
            found.append(
                (
                    "data",
                    "columns",
                    f"column drift: {_drifted_names(changed, gone, _shown)} ({len(drift.drifted_columns)} of "
                    f"{_columns(drift.n_columns)}: too few for the dataset alarm: score {drift.score:.3f}, alarm above "
                    f"{drift.threshold:g})",
                )
            )
    for group in result.segments.detected if result.segments is not None else []:
        names = _drifted_names(group.drifted_columns, [])
        found.append(
            (
                "data",
                "segment",
                f"data drift in segment {_shown(group.column)} = {_shown(group.value)}: "
                f"{len(group.drifted_columns)} of {_columns(len(group.columns))} drifted "
                f"(share {group.share:.3f} > {group.threshold:g}): {names}",
            )
        )
    for column in result.segments.columns if result.segments is not None else []:
        groups = [g for g in result.segments.groups if g.column == column]
        reference = [g.value for g in groups if g.reference_rows]
        current = [g.value for g in groups if g.current_rows]
        if reference and current and not any(g.reference_rows and g.current_rows for g in groups):
            found.append(
                (
                    "quality",
                    "segment values",
                    f"segment column {_shown(column)}: no value of the batch ({_values(current)}) is in the reference "
                    f"({_values(reference)}) - is it coded or typed differently in each file?",
                )
            )
        elif not reference or not current:
            empty = " or the batch" if not reference and not current else ""
            side = "the reference" if not reference else "the batch"
            found.append(
                (
                    "quality",
                    "segment values",
                    f"segment column {_shown(column)}: no value in {side}{empty} (every row is missing), so no segment "
                    "was tested",
                )
            )
        elif not any(g.tested for g in groups):
            smallest = result.segments.min_rows
            found.append(
                (
                    "quality",
                    "segment values",
                    f"segment column {_shown(column)}: no segment has {smallest:,} rows on both sides "
                    f"(drift.min_segment_rows), so none was tested",
                )
            )
    for chunk in result.chunks.detected if result.chunks is not None else []:
        names = _drifted_names(chunk.drifted_columns, [])
        found.append(
            (
                "data",
                "chunk",
                f"data drift in chunk {_shown(chunk.label)} ({chunk.rows:,} rows): {len(chunk.drifted_columns)} of "
                f"{_columns(len(chunk.columns))} drifted (share {chunk.share:.3f} > {chunk.threshold:g}): {names}",
            )
        )
    chunks = result.chunks
    batch_rows = result.current.rows if result.current is not None else 0
    if chunks is not None and chunks.time_column and batch_rows and chunks.unplaced_rows > 0.05 * batch_rows:
        found.append(
            (
                "quality",
                "chunk dates",
                f"time chunks: {chunks.unplaced_rows:,} of {batch_rows:,} rows have no readable date in "
                f"{_shown(chunks.time_column)} and are in no chunk - are the dates written as drift.time_format "
                "(--time-format) says?",
            )
        )
    multivariate = result.multivariate
    for detector in multivariate.detected if multivariate is not None else []:
        if detector.name == "domain_classifier":
            names = ", ".join(c["column"] for c in detector.details.get("separating_columns", [])[:3])
            message = (
                f"multivariate drift: a classifier tells the batch from the reference (ROC-AUC "
                f"{detector.statistic:.3f}, p={_p(detector.p_value)})"
                + (f"; most separating: {names}" if names else "")
            )
        else:
            message = (
                f"multivariate drift: the columns no longer go together as in the reference (PCA reconstruction "
                f"error x{detector.statistic:.3f}, p={_p(detector.p_value)})"
            )
        found.append(("data", "multivariate", message))
    target = result.target_drift
    if target is not None and target.drift_detected:
        if target.reference_rate is not None and target.current_rate is not None:
            change = (target.current_rate - target.reference_rate) * 100
            direction = "rose" if change > 0 else "fell"
            message = (
                f"{target.rate_name} rate {direction} from {_rate(target.reference_rate)} to "
                f"{_rate(target.current_rate)} ({change:+.1f} points, p={_p(target.p_value)})"
            )
        else:
            message = (
                f"the target {target.column} cannot be compared: {target.note}"
                if target.test == "none" and target.note
                else f"the target {target.column} drifted ({target.test})"
            )
        found.append(("target", "target", message))
    model = result.model or {}
    if model.get("error"):
        found.append(("model", "model unchecked", f"the model could not be checked: {model['error']}"))
    decay = model.get("decay") or {}
    if decay.get("detected"):
        drop = decay.get("roc_auc_drop")
        observed = (model.get(decay.get("basis") or "") or {}).get("roc_auc")
        reference = (model.get("reference") or {}).get("roc_auc")
        detail = f" ({observed:.3f} vs {reference:.3f} on the reference)" if observed is not None and reference else ""
        if drop is not None and drop > decay.get("max_auc_drop", 0):
            message = (
                f"model decay: ROC-AUC fell by {drop:.3f} ({decay.get('basis', 'estimated')}){detail}, "
                f"more than {decay.get('max_auc_drop', 0):g}"
            )
        else:  # no fall, yet no better than chance: dead from the start
            shown = f"{observed:.3f}" if observed is not None else "not measured"
            message = (
                f"model near chance: ROC-AUC {shown} ({decay.get('basis', 'estimated')}) is below "
                f"model.min_auc {decay.get('min_auc', 0):g}"
                + (f" (it was {reference:.3f} on the reference)" if reference else "")
            )
        found.append(("model", "model decay", message))
    prediction = result.prediction_drift
    if prediction is not None and prediction.drift_detected:
        value = prediction.p_value if prediction.kind == "p_value" else prediction.statistic
        found.append(
            (
                "model",
                "prediction",
                f"prediction drift: {prediction.name} {prediction.test} {value:.3g} "
                f"(threshold {prediction.threshold:g})",
            )
        )
    quality = result.data_quality
    gone = [c for c in quality.checks if c.check == "mostly_unusable"]
    if not quality.passed and gone and quality.score >= quality.threshold:
        names = ", ".join(c.column or "?" for c in gone[:5])
        found.append(("quality", "quality", f"data quality: {names} mostly missing or unusable ({gone[0].message})"))
    elif not quality.passed:
        worst = next((c for c in quality.checks if c.severity == "error"), None)
        detail = ""
        if worst is not None:
            what = worst.message or worst.check.replace("_", " ")
            detail = f"; worst: {_shown(worst.column) + ': ' if worst.column else ''}{_shown(what, 200)}"
        found.append(("quality", "quality", f"data quality {quality.score:.4f} below {quality.threshold:g}{detail}"))
    return found


def decide(result: MonitoringResult, trigger_on: Sequence[str] = DEFAULT_TRIGGER_ON) -> Verdict:
    """The verdict of a monitoring result (with its model section, when there is one).

    Examples
    --------
    >>> from churnops.monitor.results import example_result
    >>> decide(example_result(drifted=2, columns=4)).headline
    'data drift: 2 of 4 columns drifted (score 0.500 > 0.1): c0, c1'
    >>> decide(example_result(drifted=2, columns=4), trigger_on=["quality"]).status
    'warning'
    """
    wanted = set(trigger_on)
    findings = _findings(result)
    rows = result.current.rows
    few = rows < FEW_ROWS and any(signal != "quality" for signal, _, _ in findings)
    if few:  # a test on a handful of values says little: what it finds is reported, never an alert
        findings.append(
            (
                "quality",
                "few rows",
                f"only {rows} row{'s' if rows != 1 else ''} in the batch: drift tests on so few values are "
                f"unreliable, so what they find is a warning, not an alert (at least {FEW_ROWS} rows)",
            )
        )
    reasons = [
        Reason(
            signal,
            kind,
            "alert" if signal in wanted and kind != "columns" and (signal == "quality" or not few) else "warning",
            message,
        )
        for signal, kind, message in findings
    ]
    reasons.sort(key=lambda r: (r.severity != "alert", _ORDER.get(r.kind, 9)))
    alerts = [r for r in reasons if r.severity == "alert"]
    status = "alert" if alerts else ("warning" if reasons else "ok")
    if reasons:
        first = reasons[0].message
        more = len(reasons) - 1
        headline = first + (f" (and {more} more finding{'s' if more > 1 else ''})" if more else "")
    else:
        drift = result.dataset_drift
        drifted = len(drift.drifted_columns)
        # columns drifted, too few for the dataset's alarm: said so ("no drift: 1 of 11 columns
        # drifted" read as a contradiction)
        counted = f"{drifted} of {_columns(drift.n_columns)} drifted"
        headline = (
            (f"no dataset drift: {counted}, too few for an alarm" if drifted else f"no drift: {counted}")
            + f" (score {drift.score:.3f}, threshold {drift.threshold:g})"
            if drift.n_columns
            else "no finding, but no feature column was tested - only the target's rate was compared"
        )
    return Verdict(status, bool(alerts), headline, reasons, [s for s in SIGNALS if s in wanted])


def _shown(value: str, limit: int = 60) -> str:
    """A value from the data inside a message: one line, control characters visible, shortened."""
    return one_line_short(value, limit)


def _values(values: list[str], shown: int = 3) -> str:
    return ", ".join(_shown(v, 20) for v in values[:shown]) + (", ..." if len(values) > shown else "")
