"""The churn model as plain arrays: scoring without scikit-learn, from a file that holds only numbers.

``churnops train`` writes, beside the skops model, ``scorer.npz``: the fitted pipeline taken apart
into arrays - the category lists of the ordinal encoder, every tree of the gradient boosting
(thresholds, children, leaf values, category bitsets) and the isotonic calibration's steps. It
gives the same probabilities as the scikit-learn pipeline (the tests compare them row by row), but
scoring needs only NumPy and polars: ``predict`` and ``monitor`` no longer import scikit-learn and
skops (3-4 s of CPU for every process on a 2-core machine).

The file is untrusted input like any artifact: read with ``allow_pickle=False`` from a regular
file, members stored uncompressed, and every array checked (types, shapes, finite values, node
indices in range and pointing forward, so that no tree can loop) before it is used; any failure is
a :class:`~churnops.integrations.model_artifact.ModelRefusedError`-style refusal and churnops falls
back to the skops model.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

SCORER_FILE = "scorer.npz"
SCORER_FORMAT = "churnops-scorer/1"
MANIFEST_KEY = "__manifest__"
DAYS_PER_YEAR = 365.25
BITSET_WORDS = 8  # scikit-learn's category bitsets: 8 x 32 bits, categories 0..255
MAX_TREES = 100_000
MAX_NODES = 1_000_000
CHUNK_ROWS = 2_048
MISSING_BIN = 255
WIDTH = 256
MAX_LEAVES = 64
MAX_MASK_ENTRIES = 32_000_000
"""features x 256 bins x trees, 8 bytes each: at most 256 MB of masks for the largest accepted file."""
MAX_CATEGORIES = 1_000_000
NODE_FIELDS = {
    "value": "f",
    "feature_idx": "i",
    "num_threshold": "f",
    "missing_go_to_left": "u",
    "left": "u",
    "right": "u",
    "is_leaf": "u",
    "is_categorical": "u",
    "bitset_idx": "u",
}


class ScorerError(ValueError):
    """A scorer file that is not one churnops wrote, or a pipeline it cannot take apart."""


@dataclass(frozen=True)
class CompiledScorer:
    """The fitted pipeline as arrays; :meth:`predict` gives the calibrated churn probabilities."""

    numerical: list[str]
    categorical: list[str]
    categories: list[list[Any]]
    dates: list[str]
    as_of: str
    baseline: float
    tree_offsets: np.ndarray  # int64, n_trees + 1: tree t is nodes[offsets[t]:offsets[t + 1]]
    nodes: dict[str, np.ndarray]  # one array per field of NODE_FIELDS, children relative to the tree
    left_bitsets: np.ndarray  # uint32 (n, 8), all trees' bitsets; nodes' bitset_idx are global
    known_bitsets: np.ndarray  # uint32 (n_categorical, 8)
    feature_to_known: np.ndarray  # int64 per booster feature: its row in known_bitsets, or -1
    column_order: np.ndarray  # int64: booster feature k is prepared column column_order[k]
    recodes: list[np.ndarray]  # per categorical column: booster code of (pipeline code + 1), NaN unknown
    calibration_x: np.ndarray
    calibration_y: np.ndarray
    calibration_bounds: np.ndarray  # the isotonic regression's X_min_, X_max_: scores are clipped to them

    @property
    def columns(self) -> list[str]:
        return [*self.numerical, *self.categorical, *self.dates]

    # -- scoring -------------------------------------------------------------------------------

    def features(self, frame: Any) -> np.ndarray:
        """The booster's input matrix of a polars (or pandas) frame: the pipeline's prepared columns
        (numbers, category codes, ages), re-coded and ordered as the booster's own encoder does."""
        import polars as pl

        if not isinstance(frame, pl.DataFrame):
            frame = pl.from_pandas(frame)
        prepared: list[np.ndarray] = [_numbers(frame.get_column(name)) for name in self.numerical]
        for j, name in enumerate(self.categorical):
            codes = _codes(frame.get_column(name), self.categories[j])
            prepared.append(self.recodes[j][codes.astype(np.int64) + 1])
        prepared += [_ages(frame.get_column(name), self.as_of) for name in self.dates]
        return np.column_stack([prepared[k] for k in self.column_order]) if prepared else np.zeros((0, 0))

    def raw_scores(self, features: np.ndarray) -> np.ndarray:
        """The booster's decision function: the baseline plus every tree's leaf value, in tree order."""
        if features.shape[0] > CHUNK_ROWS:
            starts = range(0, features.shape[0], CHUNK_ROWS)
            return np.concatenate([self.raw_scores(features[start : start + CHUNK_ROWS]) for start in starts])
        walk = self._walk()
        leaf_values = walk.leaves(walk.bins(features)).T.copy()
        total = np.full(features.shape[0], self.baseline, dtype=np.float64)
        for values in leaf_values:  # scikit-learn adds the trees one by one, in order: same rounding
            total += values
        return total

    def _walk(self) -> _Walk:
        cached = self.__dict__.get("_walk_cache")
        if cached is None:
            cached = _Walk.build(self)
            object.__setattr__(self, "_walk_cache", cached)
        return cached

    def predict(self, frame: Any) -> np.ndarray:
        """Calibrated churn probabilities (float64), as the scikit-learn pipeline's ``predict_proba[:, 1]``."""
        return self.probabilities(self.features(frame))

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """:meth:`predict` of the booster's input matrix (:meth:`features`)."""
        raw = np.clip(self.raw_scores(features), self.calibration_bounds[0], self.calibration_bounds[1])
        x, y = self.calibration_x, self.calibration_y
        if x.size == 1:
            calibrated = np.full(raw.size, y[0])
        else:  # scipy's linear interp1d, step for step (np.interp rounds differently at the knots)
            hi = np.clip(np.searchsorted(x, raw), 1, x.size - 1)
            lo = hi - 1
            calibrated = (y[hi] - y[lo]) / (x[hi] - x[lo]) * (raw - x[lo]) + y[lo]
        calibrated[(calibrated > 1.0) & (calibrated <= 1.0 + 1e-5)] = 1.0
        return calibrated

    # -- file ----------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        manifest = {
            "format": SCORER_FORMAT,
            "numerical": self.numerical,
            "categorical": self.categorical,
            "categories": self.categories,
            "dates": self.dates,
            "as_of": self.as_of,
            "baseline": self.baseline,
        }
        arrays = {
            "tree_offsets": self.tree_offsets,
            "left_bitsets": self.left_bitsets,
            "known_bitsets": self.known_bitsets,
            "feature_to_known": self.feature_to_known,
            "calibration_x": self.calibration_x,
            "calibration_y": self.calibration_y,
            "calibration_bounds": self.calibration_bounds,
            "column_order": self.column_order,
            **{f"recode_{j}": recode for j, recode in enumerate(self.recodes)},
            **{f"node_{name}": array for name, array in self.nodes.items()},
        }
        encoded = np.frombuffer(json.dumps(manifest).encode("utf-8"), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, **{MANIFEST_KEY: encoded}, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> CompiledScorer:
        """A scorer read back from :meth:`to_bytes`' output, after every check (:class:`ScorerError`)."""
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = archive.infolist()
                if any(member.compress_type != zipfile.ZIP_STORED for member in members):
                    raise ScorerError("a member is compressed")
                if sum(member.file_size for member in members) > 4 * len(data) + 1024:
                    raise ScorerError("its members are larger than the file")
                for member in members:  # each array's header must not promise more than its member holds
                    with archive.open(member) as stream:
                        _check_npy_header(stream, member.file_size, member.filename)
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
            manifest = json.loads(bytes(arrays.pop(MANIFEST_KEY)).decode("utf-8"))
        except ScorerError:
            raise
        except (
            KeyError,
            ValueError,
            OSError,
            zipfile.BadZipFile,
            UnicodeDecodeError,
            RecursionError,
            MemoryError,
        ) as exc:
            raise ScorerError(f"not a scorer file ({type(exc).__name__})") from None
        scorer = _checked(manifest, arrays)
        scorer._walk()  # the tree structure is checked here too, before anything is scored
        return scorer


class _Walk:
    """What scoring needs, derived once from the scorer's nodes: every tree as bit masks.

    Every value is first replaced by its *bin*: for a number, how many of its feature's split
    thresholds lie below it (so ``x <= threshold k`` is exactly ``bin <= k``); for a category, its
    code; missing, unknown and out-of-range values share :data:`MISSING_BIN`. Whether a node sends
    a bin left is then a table (scikit-learn's rules for thresholds, missing values, category
    bitsets and unknown categories, all decided here once).

    The trees are then walked all at once, without a loop over depth (the QuickScorer method,
    Lucchese et al., SIGIR 2015): a tree's leaves are numbered left to right, and a node that sends
    a row right rules out every leaf of its left subtree. For each feature and bin, one 64-bit mask
    per tree keeps the leaves that no node on that feature rules out; a row's masks, ANDed over
    its features, keep exactly the leaves it can reach, and the leftmost of them is where the walk
    ends - the same leaf as scikit-learn's, so the same value.
    """

    def __init__(self) -> None:
        self.thresholds: list[np.ndarray | None] = []
        self.features: list[int] = []
        self.masks = np.zeros((0, WIDTH, 0), dtype=np.uint64)
        self.leaf_values = np.zeros((0, MAX_LEAVES))
        self.n_trees = 0

    @classmethod
    def build(cls, scorer: CompiledScorer) -> _Walk:
        walk = cls()
        nodes, offsets = scorer.nodes, scorer.tree_offsets
        n_trees = walk.n_trees = offsets.size - 1
        n_features = scorer.feature_to_known.size
        inner = nodes["is_leaf"] == 0
        categorical = inner & (nodes["is_categorical"] == 1)
        numerical = inner & ~categorical
        feature = nodes["feature_idx"]
        tree_of = np.repeat(np.arange(n_trees), np.diff(offsets))
        used = sorted({int(f) for f in feature[inner]})
        if len(used) * WIDTH * n_trees > MAX_MASK_ENTRIES:
            raise ScorerError("too many trees and features to score as masks")
        go_left = np.zeros((offsets[-1], WIDTH), dtype=bool)
        bins = np.arange(MISSING_BIN)
        for f in range(n_features):
            if scorer.feature_to_known[f] >= 0:
                walk.thresholds.append(None)
                continue
            on_feature = np.flatnonzero(numerical & (feature == f))
            thresholds = np.unique(nodes["num_threshold"][on_feature])
            if thresholds.size >= MISSING_BIN:
                raise ScorerError(f"feature {f} has more than {MISSING_BIN - 1} split thresholds")
            walk.thresholds.append(thresholds)
            rank = np.searchsorted(thresholds, nodes["num_threshold"][on_feature])
            go_left[on_feature, :MISSING_BIN] = bins[None, :] <= rank[:, None]
        where = np.flatnonzero(categorical)
        if where.size:
            words = scorer.left_bitsets[nodes["bitset_idx"][where]]
            known = scorer.known_bitsets[scorer.feature_to_known[feature[where]]]
            word, bit = bins >> 5, (bins & 31).astype(np.uint32)
            in_left = ((words[:, word] >> bit) & 1).astype(bool)
            is_known = ((known[:, word] >> bit) & 1).astype(bool)
            missing_left = nodes["missing_go_to_left"][where].astype(bool)[:, None]
            go_left[where, :MISSING_BIN] = in_left | (~is_known & missing_left)
        go_left[:, MISSING_BIN] = nodes["missing_go_to_left"].astype(bool)
        slot = {f: i for i, f in enumerate(used)}
        walk.features = used
        leaves_per_tree = int(np.bincount(tree_of, weights=nodes["is_leaf"], minlength=n_trees).max(initial=0))
        dtype = np.uint32 if leaves_per_tree <= 32 else np.uint64  # half the memory traffic when it fits
        masks = np.full((len(used), WIDTH, n_trees), np.iinfo(dtype).max, dtype=dtype)
        walk.leaf_values = np.zeros((n_trees, MAX_LEAVES))
        ruled_out = np.zeros(offsets[-1], dtype=dtype)  # per inner node: its left subtree's leaves
        structure = {name: nodes[name].tolist() for name in ("is_leaf", "left", "right")}
        for t in range(n_trees):
            start = int(offsets[t])
            left_leaves, leaves = _leaf_ranges(structure, start, int(offsets[t + 1]) - start)
            walk.leaf_values[t, : len(leaves)] = nodes["value"][leaves]
            for node, (low, high) in left_leaves.items():
                ruled_out[node] = ((1 << high) - 1) ^ ((1 << low) - 1)
        node_of, bin_of = np.nonzero(~go_left & inner[:, None])  # every (node, bin) sent right
        slots = np.asarray([slot.get(int(f), 0) for f in range(n_features)], dtype=np.intp)[feature[node_of]]
        np.bitwise_and.at(masks, (slots, bin_of, tree_of[node_of]), ~ruled_out[node_of])
        walk.masks = masks
        return walk

    def bins(self, features: np.ndarray) -> np.ndarray:
        """(n_features, rows) bins of the booster's input matrix."""
        rows, n_features = features.shape
        out = np.zeros((n_features, rows), dtype=np.intp)
        for f in self.features:
            column = features[:, f]
            thresholds = self.thresholds[f]
            if thresholds is None:  # a category code; negative, unknown (NaN) or too large: missing
                valid = (column >= 0) & (column < MISSING_BIN)
                out[f] = np.where(valid, np.nan_to_num(column, nan=0.0), MISSING_BIN)
            else:
                out[f] = np.where(np.isnan(column), MISSING_BIN, np.searchsorted(thresholds, column, side="left"))
        return out

    def leaves(self, bins: np.ndarray) -> np.ndarray:
        """(rows, n_trees) leaf value each row reaches in each tree."""
        rows = bins.shape[1]
        dtype = self.masks.dtype
        reachable = np.full((rows, self.n_trees), dtype.type(-1 & np.iinfo(dtype).max), dtype=dtype)
        picked = np.empty_like(reachable)
        for i, f in enumerate(self.features):
            np.take(self.masks[i], bins[f], axis=0, out=picked)
            reachable &= picked
        lowest = reachable & (~reachable + dtype.type(1))  # the leftmost leaf still reachable
        index = np.frexp(lowest.astype(np.float64))[1] - 1
        index += np.arange(self.n_trees, dtype=index.dtype)[None, :] * MAX_LEAVES
        return self.leaf_values.ravel()[index]


def _leaf_ranges(nodes: dict[str, list[int]], start: int, size: int) -> tuple[dict[int, tuple[int, int]], list[int]]:
    """A tree's leaves left to right, and for each inner node the range of its left subtree's
    leaves in that order; refuses a structure that is not a tree or has too many leaves."""
    leaves: list[int] = []
    left_leaves: dict[int, tuple[int, int]] = {}
    pending: dict[int, int] = {}
    seen = 0
    stack: list[tuple[int, bool]] = [(0, False)]
    while stack:  # depth first, left before right: leaves come out left to right
        local, left_done = stack.pop()
        node = start + local
        if left_done:
            left_leaves[node] = (pending.pop(node), len(leaves))
            continue
        seen += 1
        if seen > size:
            raise ScorerError("a tree's nodes are shared or repeated")
        if nodes["is_leaf"][node]:
            leaves.append(node)
            if len(leaves) > MAX_LEAVES:
                raise ScorerError(f"a tree has more than {MAX_LEAVES} leaves")
            continue
        pending[node] = len(leaves)
        stack += [(nodes["right"][node], False), (local, True), (nodes["left"][node], False)]
    if seen != size:
        raise ScorerError("a tree holds nodes that its root does not reach")
    return left_leaves, leaves


def _check_npy_header(stream: Any, size: int, name: str) -> None:
    """An ``.npy`` member whose header describes a plain array no larger than the member."""
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = npy.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, _, dtype = npy.read_array_header_2_0(stream)
        else:
            raise ScorerError(f"{name}: an array format churnops does not read")
    except ScorerError:
        raise
    except Exception as exc:  # noqa: BLE001 - any header that numpy cannot parse is refused
        raise ScorerError(f"{name}: not an array ({type(exc).__name__})") from None
    if dtype.hasobject:
        raise ScorerError(f"{name}: holds Python objects")
    count = 1
    for length in shape:
        count *= int(length)
    if count * dtype.itemsize > size:
        raise ScorerError(f"{name}: its header promises more data than it holds")


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- preparing the inputs as the scikit-learn pipeline does ------------------------------------


def _numbers(series: Any) -> np.ndarray:
    import polars as pl

    if not series.dtype.is_numeric() and series.dtype != pl.Boolean and series.dtype != pl.Null:
        try:
            series = series.cast(pl.Float64, strict=True)
        except pl.exceptions.InvalidOperationError:
            raise ScorerError(f"column {series.name!r} holds values that are not numbers") from None
    return series.cast(pl.Float64).fill_null(float("nan")).to_numpy().astype(np.float64, copy=False)


def _codes(series: Any, categories: list[Any]) -> np.ndarray:
    """The ordinal encoder's codes: a category's index, -1 for missing (NaN) and unknown values.

    As in scikit-learn, an empty text cell (None once in pandas) is a category of its own when the
    training data had one - the encoder's missing-value code applies to NaN only.
    """
    import polars as pl

    texts = [c for c in categories if c is not None]
    if categories and all(isinstance(c, str) for c in texts):
        keys = pl.Series("k", categories, dtype=pl.String)
        series = series.cast(pl.String) if series.dtype != pl.String else series
        nulls_equal = len(texts) < len(categories)
    else:
        keys = pl.Series("k", [float(c) for c in categories], dtype=pl.Float64)
        if not (series.dtype.is_numeric() or series.dtype == pl.Boolean):
            return np.full(series.len(), -1.0)
        series = series.cast(pl.Float64)
        nulls_equal = False
    lookup = pl.DataFrame({"k": keys, "code": np.arange(len(categories), dtype=np.float64)})
    table = pl.DataFrame({"k": series})
    joined = table.join(lookup, on="k", how="left", maintain_order="left", nulls_equal=nulls_equal)
    return joined.get_column("code").fill_null(-1.0).to_numpy().astype(np.float64, copy=False)


def _ages(series: Any, as_of: str) -> np.ndarray:
    """Years between the date and ``as_of`` (whole days / 365.25), NaN where there is no date."""
    import polars as pl

    anchor = np.datetime64(as_of, "D")
    if series.dtype == pl.Date or isinstance(series.dtype, pl.Datetime):
        days = series.cast(pl.Date)
    elif series.dtype in (pl.String, pl.Null):
        days = series.cast(pl.String).str.strptime(pl.Date, "%Y-%m-%d", strict=False, exact=True, cache=False)
        if days.null_count() != series.null_count():
            return _ages_like_pandas(series, as_of)  # not ISO dates: parse exactly as the pipeline did
    else:
        return _ages_like_pandas(series, as_of)
    values = days.to_numpy().astype("datetime64[D]")
    out = (anchor - values).astype("timedelta64[D]").astype(np.float64) / DAYS_PER_YEAR
    out[np.isnat(values)] = np.nan
    return out


def _ages_like_pandas(series: Any, as_of: str) -> np.ndarray:
    import pandas as pd

    anchor = pd.Timestamp(as_of)
    dates = pd.to_datetime(series.to_pandas(), errors="coerce")
    return np.asarray((anchor - dates).dt.days / DAYS_PER_YEAR, dtype=np.float64)


# -- taking a fitted pipeline apart ------------------------------------------------------------


def compile_pipeline(pipeline: Any, spec: Any, as_of: str) -> CompiledScorer:
    """The arrays of a fitted churn pipeline (:func:`churnops.integrations.model.fit_calibrated`).

    Raises :class:`ScorerError` for a pipeline of another shape (then only skops is written).
    """
    from churnops.integrations.model import booster_of

    features, model = pipeline.named_steps["features"], pipeline.named_steps["model"]
    booster = booster_of(pipeline)
    if getattr(booster, "n_trees_per_iteration_", None) != 1 or list(booster.classes_) != [0, 1]:
        raise ScorerError("not a binary gradient boosting classifier")
    categories: list[list[Any]] = []
    for name, transformer, columns in features.transformers_:
        if name == "categories":
            categories = [[_plain(v) for v in values if not _is_nan(v)] for values in transformer.categories_]
            if list(columns) != list(spec.categorical):
                raise ScorerError("the encoder's columns are not the model's categories")
    if list(features.get_feature_names_out()) != spec.columns:
        raise ScorerError("the prepared columns are not in the expected order")
    calibrators = getattr(model, "calibrated_classifiers_", None)
    if not calibrators or len(calibrators) != 1 or len(calibrators[0].calibrators) != 1:
        raise ScorerError("not one isotonic calibration")
    isotonic = calibrators[0].calibrators[0]
    if getattr(isotonic, "out_of_bounds", None) != "clip" or not hasattr(isotonic, "X_thresholds_"):
        raise ScorerError("not an isotonic calibration that clips")
    parts: dict[str, list[np.ndarray]] = {name: [] for name in NODE_FIELDS}
    offsets, bitsets, base = [0], [], 0
    for (predictor,) in booster._predictors:
        nodes = predictor.nodes
        for name in NODE_FIELDS:
            array = nodes[name]
            if name == "bitset_idx":
                array = array.astype(np.uint32) + np.uint32(base)
            parts[name].append(array)
        left_bits = np.asarray(predictor.raw_left_cat_bitsets, dtype=np.uint32).reshape(-1, BITSET_WORDS)
        bitsets.append(left_bits)
        base += left_bits.shape[0]
        offsets.append(offsets[-1] + nodes.shape[0])
    known, f_idx_map = booster._bin_mapper.make_known_categories_bitsets()
    n_features = len(spec.columns)
    feature_to_known = np.full(n_features, -1, dtype=np.int64)
    is_cat = booster._bin_mapper.is_categorical_
    for feature in range(n_features):
        if is_cat[feature]:
            feature_to_known[feature] = int(f_idx_map[feature])
    column_order, recodes = _booster_encoding(booster, len(spec.columns), len(spec.numerical), categories)
    return CompiledScorer(
        numerical=list(spec.numerical),
        categorical=list(spec.categorical),
        categories=categories if spec.categorical else [],
        dates=list(spec.dates),
        as_of=as_of,
        baseline=float(np.asarray(booster._baseline_prediction).ravel()[0]),
        tree_offsets=np.asarray(offsets, dtype=np.int64),
        nodes={name: _node_array(name, np.concatenate(arrays)) for name, arrays in parts.items()},
        left_bitsets=np.concatenate(bitsets) if bitsets else np.zeros((0, BITSET_WORDS), np.uint32),
        known_bitsets=np.asarray(known, dtype=np.uint32).reshape(-1, BITSET_WORDS),
        feature_to_known=feature_to_known,
        column_order=column_order,
        recodes=recodes,
        calibration_x=np.asarray(isotonic.X_thresholds_, dtype=np.float64),
        calibration_y=np.asarray(isotonic.y_thresholds_, dtype=np.float64),
        calibration_bounds=np.asarray([isotonic.X_min_, isotonic.X_max_], dtype=np.float64),
    )


def _booster_encoding(
    booster: Any, n_columns: int, n_numerical: int, categories: list[list[Any]]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """How the booster's own encoder re-codes and orders the prepared columns.

    Given categorical features, scikit-learn's gradient boosting ordinal-encodes them once more
    (the pipeline's codes, -1 included, become 0..n-1; anything else becomes missing) and moves
    them before the numerical ones.
    """
    preprocessor = getattr(booster, "_preprocessor", None)
    if preprocessor is None:
        if categories:
            raise ScorerError("categorical columns without the booster's encoder")
        return np.arange(n_columns, dtype=np.int64), []
    mask = np.asarray(booster.is_categorical_, dtype=bool)
    expected = np.zeros(n_columns, dtype=bool)
    expected[n_numerical : n_numerical + len(categories)] = True
    if not np.array_equal(mask, expected):
        raise ScorerError("the booster's categorical features are not the model's categories")
    indices = preprocessor.output_indices_
    if indices["encoder"] != slice(0, len(categories)) or indices["numerical"] != slice(len(categories), n_columns):
        raise ScorerError("the booster's encoder orders the columns unexpectedly")
    order = np.concatenate([np.flatnonzero(mask), np.flatnonzero(~mask)]).astype(np.int64)
    recodes = []
    for values, seen in zip(categories, preprocessor.named_transformers_["encoder"].categories_, strict=True):
        position = {float(code): float(i) for i, code in enumerate(seen) if not math.isnan(float(code))}
        recodes.append(np.asarray([position.get(float(code), np.nan) for code in range(-1, len(values))]))
    return order, recodes


def _node_array(name: str, array: np.ndarray) -> np.ndarray:
    kind = NODE_FIELDS[name]
    if kind == "f":
        return array.astype(np.float64)
    if kind == "i":
        return array.astype(np.int64)
    return array.astype(np.uint32 if name in ("left", "right", "bitset_idx") else np.uint8)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float | np.floating) and math.isnan(value)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return int(value)
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise ScorerError(f"a category of type {type(value).__name__}")


# -- reading a file back: every array checked -------------------------------------------------


def _checked(manifest: Any, arrays: dict[str, np.ndarray]) -> CompiledScorer:
    if not isinstance(manifest, dict) or manifest.get("format") != SCORER_FORMAT:
        raise ScorerError(f"format is not {SCORER_FORMAT}")
    names = {}
    for key in ("numerical", "categorical", "dates"):
        value = manifest.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ScorerError(f"{key} is not a list of column names")
        names[key] = value
    columns = [*names["numerical"], *names["categorical"], *names["dates"]]
    if not columns or len(set(columns)) != len(columns):
        raise ScorerError("the columns are empty or repeat")
    categories = manifest.get("categories")
    if not isinstance(categories, list) or len(categories) != len(names["categorical"]):
        raise ScorerError("the category lists do not match the categorical columns")
    for values in categories:
        if not isinstance(values, list) or len(values) > MAX_CATEGORIES:
            raise ScorerError("a category list is malformed")
        texts = [v for v in values if v is not None]
        if len(texts) < len(values) - 1 or (len(texts) < len(values) and not all(isinstance(v, str) for v in texts)):
            raise ScorerError("a category list holds more than one empty category, or one among numbers")
        if not all(isinstance(v, str) for v in texts) and not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values
        ):
            raise ScorerError("a category list mixes types or holds non-finite numbers")
    as_of = manifest.get("as_of")
    try:
        date.fromisoformat(as_of) if isinstance(as_of, str) and len(as_of) == 10 else None
    except ValueError:
        as_of = None
    if not isinstance(as_of, str) or len(as_of) != 10:
        raise ScorerError("as_of is not a date")
    baseline = manifest.get("baseline")
    if isinstance(baseline, bool) or not isinstance(baseline, (int, float)) or not math.isfinite(baseline):
        raise ScorerError("the baseline is not a finite number")
    expected = {"tree_offsets", "left_bitsets", "known_bitsets", "feature_to_known", "calibration_x", "calibration_y"}
    expected |= {"calibration_bounds", "column_order"} | {f"recode_{j}" for j in range(len(categories))}
    expected |= {f"node_{name}" for name in NODE_FIELDS}
    if set(arrays) != expected:
        raise ScorerError(f"unexpected or missing arrays: {sorted(set(arrays) ^ expected)[:3]}")
    for name, array in arrays.items():
        if not isinstance(array, np.ndarray) or array.dtype.hasobject:
            raise ScorerError(f"{name} is not a plain array")
    n_features = len(columns)
    offsets = _array(arrays["tree_offsets"], "tree_offsets", "i", 1)
    if not 2 <= offsets.size <= MAX_TREES + 1 or offsets[0] != 0 or bool((np.diff(offsets) < 1).any()):
        raise ScorerError("tree_offsets are not increasing from 0")
    n_nodes = int(offsets[-1])
    if n_nodes > MAX_NODES:
        raise ScorerError("too many nodes")
    nodes = {}
    for name, kind in NODE_FIELDS.items():
        array = _array(arrays[f"node_{name}"], f"node_{name}", kind, 1)
        if array.size != n_nodes:
            raise ScorerError(f"node_{name} does not have one entry per node")
        nodes[name] = array
    if not bool(np.isfinite(nodes["value"][nodes["is_leaf"] == 1]).all()):
        raise ScorerError("a leaf value is not finite")
    for name in ("missing_go_to_left", "is_leaf", "is_categorical"):
        if bool((nodes[name] > 1).any()):
            raise ScorerError(f"node_{name} is not 0/1")
    left_bitsets = _array(arrays["left_bitsets"], "left_bitsets", "u", 2)
    known_bitsets = _array(arrays["known_bitsets"], "known_bitsets", "u", 2)
    for name, bits in (("left_bitsets", left_bitsets), ("known_bitsets", known_bitsets)):
        if bits.shape[1] != BITSET_WORDS:
            raise ScorerError(f"{name} are not {BITSET_WORDS} words wide")
    feature_to_known = _array(arrays["feature_to_known"], "feature_to_known", "i", 1)
    if feature_to_known.size != n_features or bool(
        ((feature_to_known < -1) | (feature_to_known >= known_bitsets.shape[0])).any()
    ):
        raise ScorerError("feature_to_known is out of range")
    tree_of = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
    local = np.arange(n_nodes) - offsets[tree_of]
    sizes = np.diff(offsets)[tree_of]
    inner = nodes["is_leaf"] == 0
    for side in ("left", "right"):
        child = nodes[side].astype(np.int64)
        # children come after their parent inside the same tree: every walk ends at a leaf
        if bool(((child[inner] <= local[inner]) | (child[inner] >= sizes[inner])).any()):
            raise ScorerError(f"a node's {side} child is out of its tree or not after it")
    if bool(((nodes["feature_idx"][inner] < 0) | (nodes["feature_idx"][inner] >= n_features)).any()):
        raise ScorerError("a split reads a feature that does not exist")
    categorical = inner & (nodes["is_categorical"] == 1)
    if bool((nodes["bitset_idx"][categorical] >= left_bitsets.shape[0]).any()):
        raise ScorerError("a categorical split points at a bitset that does not exist")
    if bool((feature_to_known[nodes["feature_idx"][categorical]] < 0).any()):
        raise ScorerError("a categorical split reads a feature that is not categorical")
    numeric = inner & (nodes["is_categorical"] == 0)
    if bool(np.isnan(nodes["num_threshold"][numeric]).any()):
        raise ScorerError("a threshold is not a number")
    order = _array(arrays["column_order"], "column_order", "i", 1)
    if not np.array_equal(np.sort(order), np.arange(n_features)):
        raise ScorerError("column_order is not an order of the columns")
    recodes = []
    for j, values in enumerate(categories):
        recode = _array(arrays[f"recode_{j}"], f"recode_{j}", "f", 1)
        codes = recode[~np.isnan(recode)]
        wrong = (codes < 0) | (codes >= MISSING_BIN) | (codes != np.floor(codes))
        if recode.size != len(values) + 1 or bool(wrong.any()):
            raise ScorerError(f"recode_{j} does not re-code the categories of {names['categorical'][j]!r}")
        recodes.append(recode.astype(np.float64))
    x = _array(arrays["calibration_x"], "calibration_x", "f", 1)
    y = _array(arrays["calibration_y"], "calibration_y", "f", 1)
    if x.size < 1 or x.size != y.size or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ScorerError("the calibration is malformed")
    if bool((np.diff(x) < 0).any()) or bool(((y < 0) | (y > 1)).any()):
        raise ScorerError("the calibration is not increasing probabilities")
    bounds = _array(arrays["calibration_bounds"], "calibration_bounds", "f", 1)
    if bounds.size != 2 or not np.isfinite(bounds).all() or bounds[0] > bounds[1]:
        raise ScorerError("the calibration bounds are malformed")
    return CompiledScorer(
        numerical=names["numerical"],
        categorical=names["categorical"],
        categories=categories,
        dates=names["dates"],
        as_of=as_of,
        baseline=float(baseline),
        tree_offsets=offsets.astype(np.int64),
        nodes={
            "value": nodes["value"].astype(np.float64),
            "feature_idx": np.where(inner, nodes["feature_idx"], 0).astype(np.int64),
            "num_threshold": nodes["num_threshold"].astype(np.float64),
            "missing_go_to_left": nodes["missing_go_to_left"].astype(np.uint8),
            "left": nodes["left"].astype(np.int64),
            "right": nodes["right"].astype(np.int64),
            "is_leaf": nodes["is_leaf"].astype(np.uint8),
            "is_categorical": nodes["is_categorical"].astype(np.uint8),
            "bitset_idx": np.where(categorical, nodes["bitset_idx"], 0).astype(np.int64),
        },
        left_bitsets=left_bitsets.astype(np.uint32),
        known_bitsets=known_bitsets.astype(np.uint32),
        feature_to_known=feature_to_known.astype(np.int64),
        column_order=order.astype(np.int64),
        recodes=recodes,
        calibration_x=x.astype(np.float64),
        calibration_y=y.astype(np.float64),
        calibration_bounds=bounds.astype(np.float64),
    )


def _array(array: np.ndarray, name: str, kind: str, ndim: int) -> np.ndarray:
    kinds = {"f": "f", "i": "iu", "u": "u"}[kind]
    if array.ndim != ndim or array.dtype.kind not in kinds:
        raise ScorerError(f"{name} is not a {ndim}-D array of the expected type")
    return array
