"""``churnops data init`` and ``churnops generate`` (seed phase 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from churnops.cli.common import err, handle_errors, load, parse_rows, progress_bar, say
from churnops.cli.inputs import require_made
from churnops.cli.options import ConfigOption, SetOption

data_app = typer.Typer(
    help="The embedded reference dataset, and tables fetched from object storage.", no_args_is_help=True
)


@data_app.command("init")
@handle_errors
def init(
    rows: Annotated[
        int | None, typer.Option("--rows", "-n", help="Customers to generate [default: 30000].", min=1)
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", "-s", help="Random seed [default: 42].")] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="File to write (.csv or .parquet) [default: data/churn.csv]."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file with other content.")] = False,
    config: ConfigOption = None,
    sets: SetOption = None,
) -> None:
    """Write the synthetic bank-churn reference dataset (deterministic: same seed, same bytes).

    The columns follow the original bank-churn project's data/churn.csv; the churn label comes from a
    documented logistic model of the features (about 20% churn).
    """
    from churnops.data.generator import write_reference

    cfg = load(config, {"data.rows": rows, "data.seed": seed, "paths.reference": str(output) if output else None}, sets)
    path = cfg.resolve(cfg.paths.reference)
    cfg.check_paths(outputs={"paths.reference": path})
    with progress_bar("generating customers") as progress:
        status = write_reference(path, cfg.data.rows, cfg.data.seed, force, progress, cfg.dialect_for("reference"))
    say(f"{path}: {status} ({cfg.data.rows:,} rows, seed {cfg.data.seed})")


@data_app.command("fetch")
@handle_errors
def fetch(
    config: ConfigOption = None,
    sets: SetOption = None,
) -> None:
    """Fetch paths.reference_url and paths.production_url (s3://, gs://, az://) into paths.reference
    and paths.production, as monitor and pipeline do before each run - e.g. before train.

    A prefix's CSV or Parquet parts become one file; the local file is replaced whole (written
    next to it, then renamed), while no other churnops run is using the workspace.
    """
    from churnops.errors import ConfigError
    from churnops.pipeline.storage import fetch_configured
    from churnops.pipeline.workspace import workspace

    cfg = load(config, {}, sets)
    if not (cfg.paths.reference_url or cfg.paths.production_url):
        raise ConfigError("nothing to fetch: set paths.reference_url or paths.production_url (e.g. s3://bank/batches/)")
    with workspace(cfg, purpose="fetch", waiting=lambda message: err(f"waiting: {message}")):
        for done in fetch_configured(cfg):
            say(
                f"{done.path}: fetched from {done.url} ({done.parts} part(s), {done.bytes_fetched:,} bytes, "
                f"{done.seconds:.1f} s)"
            )


def generate(
    scenario: Annotated[
        str | None,
        typer.Option(
            "--scenario",
            help=(
                "seed (default), none, strong, covariate (features only), concept (labels only), "
                "correlation (Income no longer follows the other columns; every column keeps its distribution) "
                "or one defined in [scenario]."
            ),
        ),
    ] = None,
    intensity: Annotated[
        float | None,
        typer.Option("--intensity", help="Scales every shift; 0 = a no-drift control batch.", min=0),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", "-s", help="Seed of the random parts of the scenario.")] = None,
    input_path: Annotated[
        Path | None, typer.Option("--input", "-i", help="Source table [default: data/churn.csv].")
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="Batch to write [default: data/production/bank_churn_prod.csv]; an s3://, gs:// or az:// URL "
            "uploads it (and its .meta.json beside it) to object storage instead.",
        ),
    ] = None,
    rows: Annotated[
        str | None, typer.Option("--rows", help="Row range START:END of the source [default: 20000:30000].")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Replace a file at the output that churnops did not generate and DVC does not keep."
        ),
    ] = False,
    config: ConfigOption = None,
    sets: SetOption = None,
) -> None:
    """Make a production batch: rows of the reference file with a drift scenario applied.

    Default = the bank example's drift: Balance x1.20, Credit Score -15 (clipped to 300-850),
    Income x1.10, churn rate +4.5 points. A sidecar .meta.json records how to remake it.
    """
    from churnops.data.scenarios import resolve_scenario, with_positive_label
    from churnops.data.urls import in_object_storage, local_path

    remote = output if output is not None and in_object_storage(output) else None
    if output is not None:
        output = local_path(output)
    if remote is not None:
        if not remote.lower().endswith((".csv", ".parquet")):
            from churnops.errors import InputDataError

            raise InputDataError("--output: name a .csv or .parquet object (s3://bucket/batches/batch.csv)")
        output = None
    overrides = {
        "scenario.name": scenario,
        "scenario.intensity": intensity,
        "scenario.seed": seed,
        "paths.reference": str(input_path) if input_path else None,
        "paths.production": str(output) if output else None,
        "data.production_rows": list(parse_rows(rows, "--rows")) if rows else None,
    }
    cfg = load(config, overrides, sets)
    if input_path is None:
        require_made(cfg.resolve(cfg.paths.reference), "reference dataset", "churnops data init", "--input")
    from churnops.data.production import meta_path_for

    operations = resolve_scenario(cfg.scenario.name, cfg.scenario.custom)
    operations = with_positive_label(operations, cfg.columns.target, cfg.columns.target_positive)
    if remote is not None:
        from churnops.data.remote import shown, staging_folder, upload
        from churnops.pipeline.storage import storage_options

        # made in a private folder of the workspace, then the batch and its sidecar uploaded
        name = remote.rsplit("/", 1)[-1]
        with staging_folder(cfg.root) as folder:
            info = _make_batch(cfg, operations, folder / name, shown(remote))
            options = storage_options(cfg)
            where = upload(info.path, remote, options)
            meta = upload(info.meta_path, remote.rsplit("/", 1)[0] + "/" + meta_path_for(Path(name)).name, options)
        _said(cfg, info, where, meta)
        return
    batch = cfg.resolve(cfg.paths.production)
    flag = "--output" if output else "paths.production"
    cfg.check_paths(outputs={"paths.production": batch, "the batch's metadata": meta_path_for(batch)})
    if not force:
        from churnops.pipeline.versioning import check_replaceable_batch

        check_replaceable_batch(cfg, batch, flag)
    info = _make_batch(cfg, operations, batch)
    _said(cfg, info, str(info.path), str(info.meta_path))


def _make_batch(cfg: Any, operations: Any, output: Path, label: str | None = None) -> Any:
    """The configured scenario applied to the configured rows of the reference, written to ``output``
    (its sidecar naming ``label`` when given)."""
    from churnops.data.io import RowsBeyondEnd
    from churnops.data.production import make_production_batch
    from churnops.errors import InputDataError

    try:
        return make_production_batch(
            source=cfg.resolve(cfg.paths.reference),
            output=output,
            row_range=cfg.data.production_rows,
            operations=operations,
            scenario_name=cfg.scenario.name,
            intensity=cfg.scenario.intensity,
            seed=cfg.scenario.seed,
            dialect=cfg.dialect,
            output_label=label,
        )
    except RowsBeyondEnd as exc:
        start, end = cfg.data.production_rows
        raise InputDataError(
            f"{exc}; the batch is cut from rows [{start}, {end}) of it (data.production_rows, made for the "
            "embedded data): give others with --rows START:END"
        ) from None


def _said(cfg: Any, info: Any, where: str, meta: str) -> None:
    say(f"{where}: {info.rows:,} rows, scenario '{cfg.scenario.name}' at intensity {cfg.scenario.intensity:g}")
    for effect in info.metadata["effects"].values():
        if effect["op"] == "target_rate":
            say(
                f"  target rate {effect['rate_before']:.2%} -> {effect['rate_after']:.2%} "
                f"(requested {effect['requested_change']:+.2%}, achieved {effect['achieved_change']:+.2%})"
            )
    say(f"  metadata: {meta}")


generate = handle_errors(generate)
