"""``churnops train``, ``predict`` and ``retrain`` (seed phase 5: MLflow)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churnops.cli.common import handle_errors, load, say, staged_progress
from churnops.cli.options import ConfigOption, SetOption
from churnops.redact import redact


def _seconds(timings: dict[str, float]) -> str:
    """``{"fit_s": 2.04, "log_s": 3.1}`` -> ``fit 2.0 s, log 3.1 s``."""
    return ", ".join(f"{key.removesuffix('_s').replace('_', ' ')} {value:.1f} s" for key, value in timings.items())


@handle_errors
def train(config: ConfigOption = None, sets: SetOption = None) -> None:
    """Train the churn model on the reference window, log it to MLflow and make it the champion.

    Logs parameters, validation metrics (ROC-AUC, PR-AUC, F1, recall, Brier), the model with its
    signature and input example, permutation importances, the data's sha256 and the configuration;
    registers a new version of model 'bank-churn' and points the 'champion' alias at it.
    """
    from churnops.pipeline.modeling import store_of
    from churnops.pipeline.modeling import train as run_training

    cfg = load(config, sets=sets)
    with staged_progress() as progress:
        outcome = run_training(cfg, progress=progress)
    metrics = outcome.metrics
    if not outcome.alias:
        from churnops.errors import InputDataError

        raise InputDataError(
            f"{cfg.model.name} v{outcome.version} is registered but NOT made the champion: its validation ROC-AUC "
            f"{metrics['roc_auc']:.4f} is below model.min_auc {cfg.model.min_auc:g} - it ranks customers about as "
            f"well as chance. Check the label (columns.target = {cfg.columns.target!r}) and the features; the "
            "champion, if any, is unchanged"
        )
    say(
        f"{cfg.model.name} v{outcome.version} is the {outcome.alias}: validation ROC-AUC {metrics['roc_auc']:.4f}, "
        f"PR-AUC {metrics['pr_auc']:.4f}, F1 {metrics['f1']:.4f}, recall {metrics['recall']:.4f} at threshold "
        f"{outcome.threshold:.3f}, Brier {metrics['brier']:.4f}"
    )
    top = ", ".join(f"{name} {value:.3f}" for name, value in list(outcome.importance.items())[:5])
    say(f"most important inputs (ROC-AUC drop when shuffled): {top}")
    store = store_of(cfg)
    where = f"; models kept under {store.artifact_root}" if isinstance(store.artifact_root, str) else ""
    say(f"MLflow run {outcome.run_id} in {redact(store.tracking_uri)}{where}")
    total = outcome.timings.get("total_s", 0.0)
    say(f"took {total:.1f} s: {_seconds({k: v for k, v in outcome.timings.items() if k != 'total_s'})}")


@handle_errors
def predict(
    input_path: Annotated[
        Path, typer.Option("--input", "-i", help="Table to score (.csv or .parquet).", dir_okay=False)
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where to write [default: INPUT_predictions.EXT].")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a file at the output that does not read like predictions.")
    ] = False,
    config: ConfigOption = None,
    sets: SetOption = None,
) -> None:
    """Score a table with models:/bank-churn@champion: adds churn_probability and churn_prediction."""
    from churnops.pipeline.scoring import predict as run_prediction

    cfg = load(config, sets=sets)
    with staged_progress() as progress:
        outcome = run_prediction(cfg, input_path, output, progress, force)
    say(f"{outcome.path}: {outcome.rows:,} rows scored by {outcome.model} ({_seconds(outcome.timings)})")


@handle_errors
def retrain(config: ConfigOption = None, sets: SetOption = None) -> None:
    """Train a challenger on reference + labelled production data; promote it only if clearly better.

    The last rows of the production batch in file order (retrain.holdout_share of them) are held out; the
    challenger becomes the champion only when its ROC-AUC there beats the champion's by at least
    retrain.min_improvement (0.02); otherwise it gets the 'challenger' alias.
    """
    from churnops.pipeline.modeling import retrain as run_retraining

    cfg = load(config, sets=sets)
    with staged_progress() as progress:
        outcome = run_retraining(cfg, progress)
    say(outcome.reason)
