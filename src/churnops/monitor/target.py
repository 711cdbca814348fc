"""Target drift: for a two-valued label, the positive rate with a two-proportion test and CI."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from churnops.monitor.columns import ColumnPlan
from churnops.monitor.drift import ColumnTestError, column_drift
from churnops.monitor.prepare import CategoricalSample, NumericalSample, align_category_counts, sort_labels
from churnops.monitor.results import TargetDrift
from churnops.monitor.settings import MonitorSettings
from churnops.monitor.stattests import get_stattest, is_drift
from churnops.monitor.summaries import label_text

Z_95 = 1.959963984540054

_EVENT = """yes y true t churn churned churner churning left leaver exited exit lapsed lapse attrited attrition
cancelled canceled cancel cancellation closed lost gone departed terminated quit defected defector inactive
unsubscribed positive pos default defaulted fraud"""
_NO_EVENT = """no n false f not non never retained retain stayed stay active current kept existing negative neg
remained renewed loyal"""
EVENT_WORDS = frozenset(_EVENT.split())
"""Words that name the event a label records (the customer left) rather than its absence."""
NO_EVENT_WORDS = frozenset(_NO_EVENT.split())
"""Words that name the absence of the event (the customer stayed), or negate it ("not churned")."""
NEGATIONS = frozenset({"no", "not", "non", "never"})
"""Words that turn the meaning of the others round: "not retained" is the event, "never left" is not."""


def _reads_as(label: str) -> str | None:
    """``"event"``, ``"no event"`` or None for a label, from its words.

    >>> _reads_as("Attrited Customer"), _reads_as("Existing Customer"), _reads_as("not churned"), _reads_as("B")
    ('event', 'no event', 'no event', None)
    >>> _reads_as("Won't churn"), _reads_as("Will churn"), _reads_as("Y")
    ('no event', 'event', 'event')
    >>> _reads_as("Not Retained"), _reads_as("no longer active"), _reads_as("did not stay"), _reads_as("No")
    ('event', 'event', 'event', 'no event')
    """
    words = set(re.split(r"[^0-9a-z]+", label.lower().replace("n't", " not").replace("n’t", " not"))) - {""}
    if len(words) > 1:  # one letter is a word only alone: "won't churn" is not "t"rue
        words = {word for word in words if len(word) > 1}
    rest = words - NEGATIONS
    if not rest:  # "no", "not", "never"
        return "no event" if words else None
    meaning = "no event" if rest & NO_EVENT_WORDS else ("event" if rest & EVENT_WORDS else None)
    if meaning is not None and words & NEGATIONS:  # "not retained", "no longer active", "never left"
        return "event" if meaning == "no event" else "no event"
    return meaning


def _meaning(label: str) -> str | None:
    """``"event"`` or ``"no event"`` for a label that says it in words or as 1/0, true/false.

    >>> _meaning("Y"), _meaning(" 1 "), _meaning("0.0"), _meaning("stayed"), _meaning("B")
    ('event', 'event', 'no event', 'no event', None)
    """
    text = label.strip().lower()
    if text in ("1", "1.0"):
        return "event"
    if text in ("0", "0.0"):
        return "no event"
    return _reads_as(text)


def batch_positive_index(labels: list[Any], configured: str | None) -> tuple[int | None, str]:
    """:func:`positive_index` of a batch's labels: a batch that writes its outcomes 1/0 (or
    true/false) where ``columns.target_positive`` names the reference's word for the event
    (``Attrited Customer``) has 1 for the event - as monitoring reads the target.

    >>> batch_positive_index([0, 1], "Attrited Customer"), batch_positive_index(["A", "B"], "C")
    ((1, '1/true'), (None, 'configured'))
    """
    index, decided = positive_index(labels, configured)
    if index is None and configured is not None:
        plain, how = positive_index(labels, None)
        if how == "1/true":
            return plain, how
    return index, decided


def positive_index(labels: list[Any], configured: str | None) -> tuple[int | None, str]:
    """Which of a two-valued label's (sorted) values is the event whose rate is watched, and how
    that was decided: ``"configured"`` (``columns.target_positive``), ``"1/true"``, ``"words"``, or
    ``"last in order"`` (nothing else told - said in a notice). None when the configured value is
    not one of the labels.

    >>> positive_index(["churned", "retained"], None), positive_index([0, 1], None)
    ((0, 'words'), (1, '1/true'))
    >>> positive_index(["A", "B"], None), positive_index(["A", "B"], "A"), positive_index(["A", "B"], "C")
    ((1, 'last in order'), (0, 'configured'), (None, 'configured'))
    """
    texts = [label_text(label) for label in labels]
    if configured is not None:
        wanted = configured.strip()
        for i, text in enumerate(texts):
            if text == wanted:
                return i, "configured"
        folded = [i for i, text in enumerate(texts) if text.casefold() == wanted.casefold()]
        return (folded[0], "configured") if len(folded) == 1 else (None, "configured")
    last = len(labels) - 1
    if len(labels) == 2:
        if all(isinstance(label, bool | int | float | np.number) for label in labels):
            if {float(label) for label in labels} <= {0.0, 1.0}:
                return last, "1/true"
        elif {text.strip().lower() for text in texts} <= {"0", "1", "true", "false"}:
            return (1 if texts[1].strip().lower() in ("1", "true") else 0), "1/true"
        else:
            reads = [_reads_as(text) for text in texts]
            for i in (0, 1):
                if (reads[i] == "event" and reads[1 - i] != "event") or (
                    reads[1 - i] == "no event" and reads[i] != "no event"
                ):
                    return i, "words"
    elif len(labels) == 1:
        return 0, "1/true" if texts[0].strip().lower() in ("1", "true") else "last in order"
    return last, "last in order"


def rate_difference_ci(p1: float, n1: int, p2: float, n2: int, z: float = Z_95) -> tuple[float, float]:
    """Wald interval of ``p2 - p1`` (unpooled variances).

    >>> lo, hi = rate_difference_ci(0.20, 20_000, 0.245, 10_000)
    >>> round(lo, 4), round(hi, 4)
    (0.0349, 0.0551)
    """
    half = z * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    diff = p2 - p1
    return diff - half, diff + half


def _unique_per_row(sample: NumericalSample) -> bool:
    """Numbers that are different in nearly every row (an identifier), of a sample large enough to tell."""
    count = sample.count
    values = sample.values
    distinct = (
        len(values) if sample.weights is not None else int(np.count_nonzero(np.diff(values))) + min(len(values), 1)
    )
    return sample.relative_error == 0.0 and count >= 100 and distinct > 0.9 * count


STRAY_SHARE = 0.001
"""Reference labels beside one value that together hold at most this share of its labelled rows
(or one row) are strays - data errors - when the batch brings a common value the reference never
took: that value is then the label's other one (:func:`batch_labels`)."""
COMMON_FACTOR = 10
"""How much more common in the batch than the reference's strays together a new value must be
to be taken for the label's other value (and at least 1% of the batch's labels)."""


def batch_labels(
    reference: CategoricalSample, current: CategoricalSample
) -> tuple[dict[int, Any], int | None, list[Any]]:
    """How the target's rate reads the batch's labels that the reference never took, as data
    quality reads them too: those written as a reference label but for case or spaces (``' yes'``
    for ``'Yes'``), by their index in ``current.labels``; and, when the reference took one value
    only (no churner in it) - or one value and a few strays (:data:`STRAY_SHARE`: ``'No'`` and
    one ``'N0'``), which are then left out of its rate - the index of the batch's most common other
    value: the label's other one, whatever strays come with it (None otherwise). Last, the
    reference's strays left out."""
    known = set(reference.labels)
    respelled: dict[int, Any] = {}
    if all(isinstance(label, str) for label in current.labels):
        spellings = {label_text(label).strip().casefold(): label for label in reference.labels}
        for i, label in enumerate(current.labels):
            if label not in known and label.strip().casefold() in spellings:
                respelled[i] = spellings[label.strip().casefold()]
        # written with other words of the same meaning ('Yes' where the reference writes 'Y', '1'
        # where it writes 'churned'): read as the reference's label of that meaning, when one has it
        meanings: dict[str, list[Any]] = {}
        for label in reference.labels:
            meaning = _meaning(label_text(label))
            if meaning is not None:
                meanings.setdefault(meaning, []).append(label)
        # all or nothing: every new label of a meaning the reference has one label of, no two of
        # them of one meaning ('churn risk low' and 'churn risk high' both read as churn: neither)
        new = [i for i, label in enumerate(current.labels) if label not in known and i not in respelled]
        read = {i: _meaning(current.labels[i]) for i in new}
        matched = {i: meanings.get(meaning or "", []) for i, meaning in read.items()}
        if new and all(len(labels) == 1 for labels in matched.values()) and len(set(read.values())) == len(read):
            respelled.update({i: labels[0] for i, labels in matched.items()})
    new = [i for i, label in enumerate(current.labels) if label not in known and i not in respelled]
    if not new:
        return respelled, None, []
    other = max(new, key=lambda i: (int(current.counts[i]), label_text(current.labels[i])))
    if len(known) == 1:
        return respelled, other, []
    strays = _reference_strays(reference)
    taken = int(reference.counts.sum())
    share = int(current.counts[other]) / max(int(current.counts.sum()), 1)
    stray_share = sum(
        int(count) for label, count in zip(reference.labels, reference.counts, strict=True) if label in strays
    ) / max(taken, 1)
    if strays and share >= max(0.01, COMMON_FACTOR * stray_share):
        return respelled, other, strays
    return respelled, None, []


def _reference_strays(reference: CategoricalSample) -> list[Any]:
    """The reference's labels beside its one dominant value when they are strays: together at most
    :data:`STRAY_SHARE` of its labelled rows (or one row), and none of them an event (``1``,
    ``true``, ``yes``, ``churned``...) - a rare churn is a label, not a stray."""
    order = np.argsort(-reference.counts, kind="stable")
    rest = [reference.labels[i] for i in order[1:]]
    counts = int(reference.counts[order[1:]].sum())
    if not rest or counts > max(1, STRAY_SHARE * int(reference.counts.sum())):
        return []
    for label in rest:
        if isinstance(label, bool | int | float | np.number):
            if float(label) == 1.0:
                return []
        elif label_text(label).strip().lower() in ("1", "true") or _reads_as(label_text(label)) == "event":
            return []
    return rest


def _placeholder(label: str) -> bool:
    """A label that stands for an outcome not known yet: no letter or digit (``?``, ``-``), or a
    word saying so."""
    text = label.strip().lower()
    return not re.search(r"[0-9a-z]", text) or text in {"unknown", "pending", "tbd", "n/a", "na", "none", "null"}


def _unreadable_labels(column: str, reference: NumericalSample | CategoricalSample, values: int) -> TargetDrift:
    """Labels in the batch, none of them readable as the reference's (``Yes``/``No`` where it wrote
    ``0``/``1``): the rate cannot be compared - the target's finding, never a quiet "not compared"."""
    written = (
        ", ".join(repr(label_text(label)) for label in reference.labels[:3])
        if isinstance(reference, CategoricalSample)
        else "numbers"
    )
    note = (
        f"none of its {values:,} values in the batch reads as the reference writes its labels ({written}) - "
        "written another way? (see data quality)"
    )
    return TargetDrift(column, "none", float("nan"), None, 0.0, True, note=note)


def _as_the_reference_spells(current: CategoricalSample, respelled: dict[int, Any]) -> CategoricalSample:
    """``current`` with the labels of ``respelled`` (:func:`batch_labels`) written as the
    reference's, their counts merged."""
    merged: dict[Any, int] = {}
    for i, (label, count) in enumerate(zip(current.labels, current.counts, strict=True)):
        written = respelled.get(i, label)
        merged[written] = merged.get(written, 0) + int(count)
    labels = sort_labels(merged)
    counts = np.array([merged[label] for label in labels], dtype=current.counts.dtype)
    return CategoricalSample(labels, counts, current.rows, current.missing, current.unparsable)


def target_drift(
    plan: ColumnPlan,
    reference: NumericalSample | CategoricalSample,
    current: NumericalSample | CategoricalSample,
    settings: MonitorSettings,
) -> TargetDrift:
    """Compare the label of both datasets.

    A label with two values (churned or not) gets the pooled two-proportion z-test, the rate
    of the larger label value in each dataset, and a 95% interval of their difference. Any
    other label falls back to the column's drift test.

    The target's z statistic has the sign of the change, current minus reference (a rising
    churn rate gives a positive z), like ``difference`` and ``ci95``. The shared z-test keeps
    Evidently's reference-minus-current sign for feature columns, so it is negated here; the
    two-sided p-value depends on ``|z|`` only and is unchanged.
    """
    notes: list[str] = []
    if current.count == 0 and current.unparsable and reference.count:
        return _unreadable_labels(plan.name, reference, current.unparsable)
    if current.count == 0 and not current.unparsable and current.missing:  # the labels come later
        return TargetDrift.not_compared(plan.name, "no label in this batch yet (the column is empty)")
    if isinstance(reference, NumericalSample) and _unique_per_row(reference):
        return TargetDrift.not_compared(
            plan.name, "not a label it can compare (a different value in almost every row: an identifier?)"
        )
    if isinstance(reference, CategoricalSample) and isinstance(current, CategoricalSample):
        respelled, other, strays = batch_labels(reference, current)
        if strays:  # data errors beside the one value the reference's label took: left out, as the batch's
            reference = reference.keeping([i for i, label in enumerate(reference.labels) if label not in strays])
            shown = ", ".join(repr(label_text(label)) for label in strays[:3])
            notes.append(f"the reference's rare value(s) {shown} left out as data errors")
        allowed = set(reference.labels) | ({current.labels[other]} if other is not None else set())
        if respelled:
            respellings = [f"{current.labels[i]!r} as {label_text(label)!r}" for i, label in respelled.items()]
            notes.append(f"read as the reference writes them: {', '.join(respellings[:3])}")
            current = _as_the_reference_spells(current, respelled)
        if 1 <= len(reference.labels) <= 2 and set(current.labels) - allowed:
            # values the reference's label never took (50000 in a 0/1 column) are data errors,
            # counted by data quality; the rate is measured on the labels that exist
            keep = [i for i, label in enumerate(current.labels) if label in allowed]
            dropped = int(current.count - current.counts[keep].sum())
            if dropped == current.count:  # labels in the batch, none of them the reference's
                if all(_placeholder(label_text(current.labels[i])) for i in range(len(current.labels))):
                    return TargetDrift.not_compared(
                        plan.name, "its labels in the batch are not known yet ('?', 'pending'...)"
                    )
                return _unreadable_labels(plan.name, reference, dropped)
            if dropped:
                notes.append(f"{dropped} values the reference's label never took were left out (see data quality)")
            current = current.keeping(keep)
        ref_counts, cur_counts, labels = align_category_counts(reference, current)
        n1, n2 = int(ref_counts.sum()), int(cur_counts.sum())
        if 1 <= len(labels) <= 2 and n1 and n2:
            spec = get_stattest("z")
            keys = np.arange(len(labels), dtype=np.int64)
            result = spec.func(keys, keys, reference_weights=ref_counts, current_weights=cur_counts)
            positive, decided = positive_index(labels, settings.target_positive)
            if positive is None:
                values = ", ".join(repr(label_text(label)) for label in labels)
                return TargetDrift.not_compared(
                    plan.name,
                    f"columns.target_positive {settings.target_positive!r} is not one of its values ({values})",
                )
            if decided == "last in order" and len(labels) == 2:
                other = label_text(labels[1 - positive])
                notes.append(
                    f"the rate watched is the share of {label_text(labels[positive])!r} (the other value: "
                    f"{other!r}); set columns.target_positive to watch {other!r} instead"
                )
            p1 = float(ref_counts[positive]) / n1
            p2 = float(cur_counts[positive]) / n2
            threshold = settings.target_significance
            return TargetDrift(
                column=plan.name,
                test=spec.name,
                # current minus reference of the positive rate (the test counts the later value);
                # 0.0 - 0.0 is not -0.0
                statistic=(0.0 - result.statistic) if positive == len(labels) - 1 else (result.statistic + 0.0),
                p_value=result.p_value,
                threshold=threshold,
                drift_detected=is_drift(result, spec, threshold),
                positive_label=label_text(labels[positive]),
                reference_rate=p1,
                current_rate=p2,
                difference=p2 - p1,
                ci95=rate_difference_ci(p1, n1, p2, n2),
                note="; ".join(notes) or None,
            )
    try:
        drift = column_drift(plan, reference, current, settings)
    except ColumnTestError as exc:
        return TargetDrift.not_compared(plan.name, str(exc))
    return TargetDrift(
        column=plan.name,
        test=drift.test,
        statistic=drift.statistic,
        p_value=drift.p_value,
        threshold=drift.threshold,
        drift_detected=drift.drift_detected,
    )
