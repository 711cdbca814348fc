"""Scoring live requests with the MLflow champion (``POST /v1/predict``), micro-batched.

The champion is loaded once at start by churnops' own rules (its array form when it has one: no
scikit-learn on the request path). Requests that arrive together are scored in one model call:
the batcher takes every request waiting, up to ``max_rows`` records, scores them at once, and
answers each with its own rows - a single-record request waits at most for the call in progress.
Up to :data:`INLINE_ROWS` records encoded without a table are scored on the event loop (a few
hundred microseconds, less than a hop to a worker thread costs); larger batches, and models
without their array form, on a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

INLINE_ROWS = 64
"""Micro-batches of up to this many records are encoded and scored on the event loop (0.3 ms for
one record, 0.7 ms for 64: less than a hop to a worker thread and back costs the others)."""


def customer_key(value: Any) -> str | None:
    """A customer's key as text, the same whatever JSON type carries it: ``15601001``,
    ``15601001.0`` (what pandas writes for whole numbers beside a missing value) and
    ``"15601001"`` are one customer. None for no customer (missing, true or false, or not a
    finite number).

    >>> customer_key(15601001), customer_key(15601001.0), customer_key("15601001"), customer_key(None)
    ('15601001', '15601001', '15601001', None)
    """
    if value is None or isinstance(value, bool):  # true/false name no customer
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def arm_of(value: Any, share: float) -> str:
    """``challenger`` for a ``share`` of the values of a customer key, ``champion`` for the rest:
    decided by a hash of the value, so a customer stays in one arm across requests and restarts.

    >>> arm_of("C-1", 0.0), arm_of("C-1", 1.0), arm_of(None, 1.0)
    ('champion', 'challenger', 'champion')
    """
    import hashlib

    value = customer_key(value)
    if value is None or share <= 0:
        return "champion"
    digest = hashlib.sha256(f"churnops-ab:{value}".encode()).digest()
    return "challenger" if int.from_bytes(digest[:8], "big") / 2**64 < share else "champion"


def _dates_one_by_one(frame: Any, columns: list[str]) -> Any:
    """``frame`` with the text dates of ``columns`` (inputs of no known format) read value by
    value, so that the requests scored together never decide for each other; a value that is no
    date, or reads both as day/month and as month/day, is refused (the request gets 422)."""
    import polars as pl

    from churnops.errors import InputDataError
    from churnops.monitor.prepare import AmbiguousDates, date_family

    for name in columns:
        if name not in frame.columns or frame.schema[name] != pl.String:
            continue
        text = frame[name].str.strip_chars()
        found: dict[str, Any] = {}
        for value in text.drop_nulls().unique(maintain_order=True).to_list():  # the first bad value is named
            if not value:
                continue
            iso = pl.Series([value]).str.to_date("%Y-%m-%d", strict=False)[0]
            if iso is not None:
                found[value] = iso
                continue
            family = date_family(pl.Series([value]), as_written=True)  # its calendar day, as written
            if family.ambiguous:
                raise AmbiguousDates(
                    name,
                    f"{name}: {value[:40]!r} reads as day/month and as month/day: send dates as YYYY-MM-DD, or set "
                    f'columns.date_formats = {{ "{name}" = "day-first" }} for the service',
                )
            if family.name is None or family.parsed[0] is None:
                raise InputDataError(f"{name}: {value[:40]!r} is not a date the model can read (send YYYY-MM-DD)")
            found[value] = family.parsed[0].date()
        lookup = pl.DataFrame(
            {"text": list(found), "date": list(found.values())}, schema={"text": pl.String, "date": pl.Date}
        )
        read = pl.DataFrame({"text": text}).join(lookup, on="text", how="left", maintain_order="left")["date"]
        frame = frame.with_columns(read.alias(name))
    return frame


@dataclass
class Champion:
    """The model that answers ``/v1/predict``."""

    loaded: Any
    name: str
    version: str
    threshold: float
    columns: list[str]
    date_formats: dict[str, str] = field(default_factory=dict)
    """How the text of each date input is read: as the model learned it, or as the reference's
    ``columns.date_formats`` says."""
    calls: int = 0
    rows: int = 0
    _encoder: Any = field(default=None, repr=False, compare=False)  # (dtypes, its RecordEncoder)

    @classmethod
    def load(cls, config: Any, alias: str = "champion") -> Champion | None:
        """The model behind ``model.name@alias`` in the configured MLflow store; None (said
        once) when there is none yet."""
        from churnops.integrations import mlflow_registry as registry
        from churnops.pipeline.scoring import store_of

        store = store_of(config)
        if registry.find_alias(store, config.model.name, alias) is None:
            if alias == "champion":
                logger.warning("no champion model yet ('churnops train'): POST /v1/predict answers 503")
            else:
                logger.warning("no model '%s@%s': every customer is scored by the champion", config.model.name, alias)
            return None
        return cls.of(config, registry.load_alias(store, config.model.name, alias))

    @classmethod
    def of(cls, config: Any, loaded: Any) -> Champion:
        """The champion of a loaded model (:class:`~churnops.integrations.mlflow_registry.LoadedModel`)."""
        return cls(
            loaded,
            config.model.name,
            str(loaded.version.version),
            float(loaded.metadata.threshold),
            list(loaded.metadata.features.columns),
            {**loaded.metadata.date_formats, **config.columns.date_formats},
        )

    @property
    def registered(self) -> dict[str, Any]:
        """The registered version it was loaded from (what a worker process loads to score alike)."""
        from dataclasses import asdict

        return asdict(self.loaded.version)

    def score(self, frame: Any) -> np.ndarray:
        """Probabilities of the rows of ``frame`` (it holds the model's input columns)."""
        from churnops.integrations.model import predict_probabilities
        from churnops.pipeline.scoring import model_dates

        self.calls += 1
        self.rows += frame.height
        dates = self.loaded.metadata.features.dates
        inputs = _dates_one_by_one(frame.select(self.columns), [c for c in dates if c not in self.date_formats])
        inputs, _ = model_dates(inputs, dates, self.date_formats)
        return np.asarray(predict_probabilities(self.loaded.model, inputs), dtype=np.float64)

    def score_records(self, records: list[dict[str, Any]], dtypes: dict[str, str]) -> np.ndarray:
        """Probabilities of ``records`` (checked events, of the reference's ``dtypes``): encoded
        without a table when the model's array form and their values allow (:meth:`encoded`),
        else scored as a table with the reference's types."""
        from churnops.serve.windows import window_frame

        features = self.encoded(records, dtypes)
        if features is not None:
            return self.score_encoded(features)
        return self.score(window_frame(records, {c: dtypes.get(c, "unread") for c in self.columns}))

    def encoded(self, records: list[dict[str, Any]], dtypes: dict[str, str]) -> np.ndarray | None:
        """The model's input matrix of ``records``, encoded without a table
        (:mod:`churnops.integrations.scorer_records`: the table's numbers); None when the model
        has no array form or a value needs the table."""
        from churnops.integrations.model_scorer import CompiledScorer
        from churnops.integrations.scorer_records import RecordEncoder

        scorer = self.loaded.model
        if not isinstance(scorer, CompiledScorer):
            return None
        if self._encoder is None or self._encoder[0] is not dtypes:
            self._encoder = (dtypes, RecordEncoder(scorer, dtypes))
        features: np.ndarray | None = self._encoder[1].features(records)
        return features

    def score_encoded(self, features: np.ndarray) -> np.ndarray:
        """Probabilities of an input matrix from :meth:`encoded`."""
        self.calls += 1
        self.rows += features.shape[0]
        probabilities: np.ndarray = self.loaded.model.probabilities(features)
        return probabilities


@dataclass
class MicroBatcher:
    """Requests waiting together become one model call."""

    champion: Champion
    dtypes: dict[str, str]
    max_rows: int = 512
    _queue: asyncio.Queue[tuple[list[dict[str, Any]], asyncio.Future[np.ndarray]]] | None = field(default=None)
    _task: asyncio.Task[None] | None = None

    async def score(self, records: list[dict[str, Any]]) -> np.ndarray:
        """The probabilities of ``records``, scored with whatever else is waiting."""
        if self._queue is None:
            self._queue = asyncio.Queue()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        await self._queue.put((records, future))
        return await future

    async def _run(self) -> None:
        from starlette.concurrency import run_in_threadpool

        assert self._queue is not None
        while True:
            waiting = [await self._queue.get()]
            rows = len(waiting[0][0])
            while rows < self.max_rows and not self._queue.empty():
                item = self._queue.get_nowait()
                waiting.append(item)
                rows += len(item[0])
            records = [record for batch, _ in waiting for record in batch]
            try:  # a few records encoded and scored on the event loop, more on a worker thread
                features = self.champion.encoded(records, self.dtypes) if len(records) <= INLINE_ROWS else None
                if features is not None:
                    scores = self.champion.score_encoded(features)
                else:
                    scores = await run_in_threadpool(self.champion.score_records, records, self.dtypes)
            except Exception as exc:  # each waiting request scored alone: only the one at fault hears of it
                if len(waiting) == 1:
                    if not waiting[0][1].done():
                        waiting[0][1].set_exception(exc)
                    continue
                for batch, future in waiting:
                    try:
                        alone = await run_in_threadpool(self.champion.score_records, batch, self.dtypes)
                    except Exception as own:  # noqa: BLE001 - told to the request it belongs to
                        if not future.done():
                            future.set_exception(own)
                    else:
                        if not future.done():
                            future.set_result(alone)
                continue
            start = 0
            for batch, future in waiting:
                if not future.done():
                    future.set_result(scores[start : start + len(batch)])
                start += len(batch)
