"""A model artifact read as untrusted input: skops with our trusted types, metadata by our schema.

An MLflow model folder names its own serializer (``serialization_format`` in MLmodel: pickle,
cloudpickle or skops), the types skops may build (``skops_trusted_types``) and code to put on
``sys.path`` (``code``). ``mlflow.sklearn.load_model`` obeys all three, so whoever can write to
the artifact store can make any ``churnops monitor`` run their code. churnops decides instead:

* the model is read only from ``model.skops`` in the model folder - a regular file, never a
  symbolic link - with :data:`SKOPS_TRUSTED_TYPES`; the file's types are checked against that
  list (``skops.io.get_untrusted_types``) before anything is built; pickle is never read;
* MLmodel is read with ``yaml.safe_load`` for its ``metadata`` only, validated by
  :func:`parse_metadata`; a folder that declares another serializer is refused outright.

Any failed check raises :class:`ModelRefusedError` (one line, nothing from the artifact run).
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
import stat
import sys
import threading
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from churnops.errors import IntegrationError, MissingDependencyError
from churnops.integrations.model import SKOPS_TRUSTED_TYPES, FeatureSpec, _sklearn

logger = logging.getLogger(__name__)
MODEL_FILE = "model.skops"
MLMODEL_FILE = "MLmodel"
MAX_MODEL_BYTES = 1 << 30
MAX_MLMODEL_BYTES = 4 << 20
MAX_UNPACKED_BYTES = 1 << 30
"""A skops file is a zip: its members may not unpack to more than this (zip bombs)."""
MAX_COLUMNS = 10_000
MAX_NAME_CHARS = 1_000
MAX_ROWS = 10**12
FEATURE_GROUPS = ("numerical", "categorical", "dates")
UNIT_METRICS = ("roc_auc", "pr_auc", "f1", "precision", "recall", "brier", "positive_rate")
"""Reference metrics that are shares or areas, in [0, 1]; ``rows`` is the only other one."""


class ModelRefusedError(IntegrationError):
    """A model artifact failed churnops' checks; nothing from it was run."""


@dataclass(frozen=True)
class ModelMetadata:
    """What churnops stores beside the model (MLmodel ``metadata``), once validated."""

    threshold: float
    features: FeatureSpec
    as_of: str
    reference_metrics: dict[str, float | int | None] | None = None
    importance: dict[str, float] = field(default_factory=dict)
    target: str | None = None
    importance_method: str | None = None
    scorer_sha256: str | None = None
    """sha256 of the model's array form (``scorer.npz``), when it was written: the file is used only
    if it has exactly these bytes."""
    date_formats: dict[str, str] = field(default_factory=dict)
    """How the text of each date input was written where the model learned (a key of
    :data:`~churnops.monitor.prepare.DATE_FAMILIES` or a strftime format; ISO dates need none):
    a batch's dates are read that way, never guessed from its first row."""
    input_ranges: dict[str, list[Any]] = field(default_factory=dict)
    """The smallest and largest value of each numerical input (numbers) and date input (ISO
    dates) where the model learned: a batch far outside them is told (or refused)."""

    def to_dict(self) -> dict[str, Any]:
        """The metadata as logged with the model (NaN metrics as null)."""
        metrics = self.reference_metrics
        return {
            "threshold": self.threshold,
            "reference_metrics": None if metrics is None else {k: _none_if_nan(v) for k, v in metrics.items()},
            "importance": self.importance,
            "importance_method": self.importance_method,
            "features": self.features.to_dict(),
            "target": self.target,
            "as_of": self.as_of,
            "scorer_sha256": self.scorer_sha256,
            "date_formats": self.date_formats,
            "input_ranges": self.input_ranges,
        }


def _none_if_nan(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def parse_metadata(raw: Any) -> ModelMetadata:
    """The metadata checked against churnops' schema; :class:`ModelRefusedError` names the bad key.

    >>> spec = {"numerical": ["Balance"], "categorical": [], "dates": []}
    >>> parse_metadata({"threshold": 0.3, "features": spec, "as_of": "2026-01-31"}).threshold
    0.3
    >>> parse_metadata({"threshold": float("nan"), "features": spec, "as_of": "2026-01-31"})
    Traceback (most recent call last):
    ...
    churnops.integrations.model_artifact.ModelRefusedError: metadata 'threshold': nan is not a finite number in [0, 1]
    """
    if not isinstance(raw, dict):
        raise ModelRefusedError(f"metadata: expected a mapping, found {_kind(raw)}")
    features = _features(raw.get("features"))
    columns = set(features.columns)
    importance = _mapping(raw.get("importance") or {}, "importance")
    unknown = sorted(name for name in importance if name not in columns)
    if unknown:
        raise ModelRefusedError(f"metadata 'importance': {_show(unknown[0])} is not one of the model's columns")
    return ModelMetadata(
        threshold=_unit(raw.get("threshold"), "threshold"),
        features=features,
        as_of=_as_of(raw.get("as_of")),
        reference_metrics=_reference_metrics(raw.get("reference_metrics")),
        importance=dict(
            sorted(
                ((name, _bounded(value, f"importance.{name}", -1.0, 1.0)) for name, value in importance.items()),
                key=lambda item: -item[1],
            )
        ),
        target=_optional_text(raw.get("target"), "target"),
        importance_method=_optional_text(raw.get("importance_method"), "importance_method"),
        scorer_sha256=_sha256(raw.get("scorer_sha256")),
        date_formats=_date_formats(raw.get("date_formats") or {}, features.dates),
        input_ranges=_input_ranges(raw.get("input_ranges") or {}, features),
    )


def _date_formats(value: Any, dates: list[str]) -> dict[str, str]:
    """``date_formats``: for date inputs of the model, a family name or a strftime format of at
    most 40 plain characters."""
    from churnops.monitor.prepare import DATE_FAMILIES

    formats = _mapping(value, "date_formats")
    for name, way in formats.items():
        if name not in dates:
            raise ModelRefusedError(f"metadata 'date_formats': {_show(name)} is not one of the model's date inputs")
        if not isinstance(way, str) or not (way in DATE_FAMILIES or re.fullmatch(r"[%A-Za-z0-9 ./:,_+-]{1,40}", way)):
            raise ModelRefusedError(f"metadata 'date_formats.{name}': {_show(way)} is not a date format")
    return dict(formats)


def _input_ranges(value: Any, features: FeatureSpec) -> dict[str, list[Any]]:
    """``input_ranges``: ``[low, high]`` for numerical inputs (finite numbers) and date inputs
    (ISO dates), low <= high."""
    from datetime import date

    ranges = _mapping(value, "input_ranges")
    for name, pair in ranges.items():
        key = f"input_ranges.{name}"
        if not isinstance(pair, list) or len(pair) != 2:
            raise ModelRefusedError(f"metadata '{key}': expected [low, high], found {_show(pair)}")
        if name in features.numerical:
            low, high = (_number(x, key) for x in pair)
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise ModelRefusedError(f"metadata '{key}': {_show(pair)} is not a range of finite numbers")
        elif name in features.dates:
            try:
                low_day, high_day = (
                    date.fromisoformat(x) if isinstance(x, str) and len(x) == 10 else None for x in pair
                )
            except ValueError:
                low_day = high_day = None
            if low_day is None or high_day is None or low_day > high_day:
                raise ModelRefusedError(f"metadata '{key}': {_show(pair)} is not a range of ISO dates")
        else:
            raise ModelRefusedError(f"metadata 'input_ranges': {_show(name)} is not a numerical or date input")
    return {name: list(pair) for name, pair in ranges.items()}


def _iso_day(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 10


def _sha256(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ModelRefusedError(f"metadata 'scorer_sha256': {_show(value)} is not a sha256 digest")
    return value


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _show(value: Any, limit: int = 60) -> str:
    """A value in an error message: repr, on one line, shortened."""
    text = repr(value).replace("\n", " ").replace("\r", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModelRefusedError(f"metadata '{key}': expected a number, found {_kind(value)} {_show(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise ModelRefusedError(f"metadata '{key}': {_show(value)} is out of range") from None
    return number


def _bounded(value: Any, key: str, low: float, high: float) -> float:
    number = _number(value, key)
    if not (math.isfinite(number) and low <= number <= high):
        raise ModelRefusedError(f"metadata '{key}': {_show(number)} is not a finite number in [{low:g}, {high:g}]")
    return number


def _unit(value: Any, key: str) -> float:
    return _bounded(value, key, 0.0, 1.0)


def _mapping(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ModelRefusedError(f"metadata '{key}': expected a mapping, found {_kind(value)}")
    for name in value:
        _name(name, key)
    return value


def _name(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_NAME_CHARS or "\x00" in value:
        raise ModelRefusedError(f"metadata '{key}': {_show(value)} is not a column name")
    return value


def _features(value: Any) -> FeatureSpec:
    groups = _mapping(value, "features")
    unknown = sorted(set(groups) - set(FEATURE_GROUPS))
    if unknown:
        raise ModelRefusedError(f"metadata 'features': unknown group {_show(unknown[0])} (expected {FEATURE_GROUPS})")
    lists: dict[str, list[str]] = {}
    for group in FEATURE_GROUPS:
        names = groups.get(group) or []
        if not isinstance(names, list):
            raise ModelRefusedError(f"metadata 'features.{group}': expected a list of names, found {_kind(names)}")
        if len(names) > MAX_COLUMNS:
            raise ModelRefusedError(f"metadata 'features.{group}': more than {MAX_COLUMNS:,} columns")
        lists[group] = [_name(name, f"features.{group}") for name in names]
    spec = FeatureSpec(lists["numerical"], lists["categorical"], lists["dates"])
    if not spec.columns:
        raise ModelRefusedError("metadata 'features': no column")
    if len(set(spec.columns)) != len(spec.columns):
        raise ModelRefusedError("metadata 'features': a column is listed twice")
    return spec


def _reference_metrics(value: Any) -> dict[str, float | int | None] | None:
    if value is None:
        return None
    metrics = _mapping(value, "reference_metrics")
    checked: dict[str, float | int | None] = {}
    for key in UNIT_METRICS:
        if metrics.get(key) is not None:
            checked[key] = _unit(metrics[key], f"reference_metrics.{key}")
        elif key in metrics:
            checked[key] = None
    rows = metrics.get("rows")
    if rows is not None:
        if isinstance(rows, bool) or not isinstance(rows, int) or not 0 <= rows <= MAX_ROWS:
            raise ModelRefusedError(f"metadata 'reference_metrics.rows': {_show(rows)} is not a row count")
        checked["rows"] = rows
    return checked


def _as_of(value: Any) -> str:
    if isinstance(value, date):  # YAML reads an unquoted 2026-01-31 as a date
        return value.isoformat()
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise ModelRefusedError(f"metadata 'as_of': {_show(value)} is not a date (YYYY-MM-DD)")


def _optional_text(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_NAME_CHARS:
        raise ModelRefusedError(f"metadata '{key}': expected a short text, found {_kind(value)}")
    return value


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of ``path``, which must be a regular file (not a symbolic link) of at most ``limit`` bytes.

    The file is opened without following a link and checked on the open descriptor, so it
    cannot be swapped between the check and the read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    if path.is_symlink():
        raise ModelRefusedError(f"{path.name} is a symbolic link; churnops reads only regular files")
    try:
        handle = os.open(path, flags)
    except FileNotFoundError:
        raise ModelRefusedError(f"no {path.name} in the model folder {path.parent}") from None
    except OSError as exc:
        raise ModelRefusedError(f"cannot open {path.name}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode):
            raise ModelRefusedError(f"{path.name} is not a regular file")
        if info.st_size > limit:
            raise ModelRefusedError(f"{path.name} is larger than {limit:,} bytes")
        with os.fdopen(handle, "rb", closefd=True) as stream:
            handle = -1
            data = stream.read(limit + 1)
    finally:
        if handle >= 0:
            os.close(handle)
    if len(data) > limit:
        raise ModelRefusedError(f"{path.name} is larger than {limit:,} bytes")
    return data


def read_metadata(folder: Path) -> ModelMetadata:
    """The validated metadata of the model folder; refuses a folder that declares another format."""
    try:
        import yaml
    except ImportError:
        raise MissingDependencyError("pyyaml", "mlflow") from None

    text = read_regular_file(folder / MLMODEL_FILE, MAX_MLMODEL_BYTES)
    try:
        document = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError, UnicodeDecodeError) as exc:
        raise ModelRefusedError(f"{MLMODEL_FILE} is not valid YAML: {_show(str(exc).splitlines()[0])}") from None
    if not isinstance(document, dict):
        raise ModelRefusedError(f"{MLMODEL_FILE}: expected a mapping, found {_kind(document)}")
    flavors = document.get("flavors")
    flavor = flavors.get("sklearn") if isinstance(flavors, dict) else None
    if isinstance(flavor, dict):
        declared = flavor.get("serialization_format", "pickle")
        if declared != "skops":
            raise ModelRefusedError(
                f"it declares serialization format {_show(declared)}; churnops loads only skops ({MODEL_FILE})"
            )
        if flavor.get("code"):
            raise ModelRefusedError(f"it ships code to import ({_show(flavor['code'])}); churnops imports none")
    return parse_metadata(document.get("metadata"))


_SKOPS_IMPORT = threading.Lock()


def import_skops() -> Any:
    """``skops.io``, imported so that it trusts no scikit-learn estimator by default.

    When imported, skops lists every scikit-learn estimator to trust them all by default, and
    listing them imports all of scikit-learn (about a second here, for every process that loads a
    model). churnops passes its own complete list, :data:`SKOPS_TRUSTED_TYPES`, so the listing is
    replaced by an empty one while skops is imported: faster, and nothing is trusted that churnops
    did not name. If skops was already imported elsewhere (MLflow saving a model), its defaults
    stay as they are and the same list is still checked first.
    """
    _sklearn()
    with _SKOPS_IMPORT:
        if "skops.io" not in sys.modules:
            import sklearn.utils

            listing = sklearn.utils.all_estimators
            sklearn.utils.all_estimators = lambda *args, **kwargs: []
            try:
                import skops.io  # noqa: F401
            except ImportError:
                raise MissingDependencyError("skops", "mlflow") from None
            finally:
                sklearn.utils.all_estimators = listing
    return sys.modules["skops.io"]


_skops = import_skops


def untrusted_types(data: bytes) -> list[str]:
    """Types in a skops file that neither skops' defaults nor :data:`SKOPS_TRUSTED_TYPES` trust."""
    skops_io = _skops()

    _check_zip(data)
    try:
        found = skops_io.get_untrusted_types(data=data)
    except Exception as exc:  # noqa: BLE001 - a malformed file fails in many ways; nothing is built
        raise ModelRefusedError(f"{MODEL_FILE} is not a readable skops file ({type(exc).__name__})") from None
    return sorted(set(found) - set(SKOPS_TRUSTED_TYPES))


def _check_zip(data: bytes) -> None:
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        raise ModelRefusedError(f"{MODEL_FILE} is not a skops file (not a zip archive)") from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise ModelRefusedError(f"{MODEL_FILE} unpacks to more than {MAX_UNPACKED_BYTES:,} bytes")


def read_model(folder: Path, metadata: ModelMetadata) -> Any:
    """The pipeline in ``folder/model.skops``, built only if every type in it is trusted."""
    skops_io = _skops()
    data = read_regular_file(folder / MODEL_FILE, MAX_MODEL_BYTES)
    untrusted = untrusted_types(data)
    if untrusted:
        shown = ", ".join(_show(name, 80) for name in untrusted[:5]) + (", ..." if len(untrusted) > 5 else "")
        raise ModelRefusedError(f"{MODEL_FILE} holds types churnops does not trust: {shown}")
    try:
        model = skops_io.loads(data, trusted=SKOPS_TRUSTED_TYPES)
    except Exception as exc:  # noqa: BLE001 - only trusted types are built; any failure is a bad file
        raise ModelRefusedError(f"{MODEL_FILE} cannot be loaded ({type(exc).__name__})") from None
    _check_model(model, metadata)
    return model


def _check_model(model: Any, metadata: ModelMetadata) -> None:
    from sklearn.pipeline import Pipeline

    if not isinstance(model, Pipeline) or not hasattr(model, "predict_proba"):
        raise ModelRefusedError(f"{MODEL_FILE} holds a {type(model).__name__}, not a scikit-learn pipeline")
    expected = metadata.features.columns
    try:
        names = [str(name) for name in model.feature_names_in_]
        classes = [int(label) for label in model.classes_]
    except (AttributeError, TypeError, ValueError):
        raise ModelRefusedError(f"{MODEL_FILE} holds an unfitted or unusual pipeline") from None
    if sorted(names) != sorted(expected):
        raise ModelRefusedError(f"{MODEL_FILE} reads other columns than its metadata lists")
    if classes != [0, 1]:
        raise ModelRefusedError(f"{MODEL_FILE} does not predict 0/1 labels")


def read_scorer(folder: Path, metadata: ModelMetadata) -> Any | None:
    """The model's array form (:mod:`churnops.integrations.model_scorer`) when the folder has the
    one its metadata names, checked; None (and a warning) otherwise - the skops model is used then."""
    from churnops.integrations.model_scorer import SCORER_FILE, CompiledScorer, ScorerError, sha256_of

    if metadata.scorer_sha256 is None:
        return None
    if not (folder / SCORER_FILE).exists() and not (folder / SCORER_FILE).is_symlink():
        logger.debug("the model folder has no %s: loading model.skops", SCORER_FILE)
        return None
    try:
        data = read_regular_file(folder / SCORER_FILE, MAX_MODEL_BYTES)
        if sha256_of(data) != metadata.scorer_sha256:
            raise ScorerError("its sha256 is not the one the model's metadata records")
        scorer = CompiledScorer.from_bytes(data)
        if sorted(scorer.columns) != sorted(metadata.features.columns):
            raise ScorerError("it reads other columns than the model's metadata lists")
    except (ModelRefusedError, ScorerError) as exc:
        logger.warning("not using %s of the model (%s): loading model.skops instead", SCORER_FILE, exc)
        return None
    return scorer


def load_folder(folder: Path, arrays: bool = True) -> tuple[Any, ModelMetadata]:
    """The model and its metadata from a local model folder, after every check.

    With ``arrays`` (the default) the model's array form is used when it is there and sound - no
    scikit-learn import; otherwise, and for retraining, the skops pipeline.
    """
    if not folder.is_dir():
        raise ModelRefusedError(f"the model folder {folder} does not exist")
    metadata = read_metadata(folder)
    scorer = read_scorer(folder, metadata) if arrays else None
    return (scorer if scorer is not None else read_model(folder, metadata)), metadata
