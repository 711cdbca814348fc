from pathlib import Path

import pytest

from churnops.config import Config, load_config
from churnops.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file(workspace):
    config = load_config()
    assert config.source is None
    assert config.thresholds.dataset_drift == 0.1
    assert config.thresholds.column_drift == 0.1
    assert config.thresholds.data_quality == 0.95
    assert config.data.reference_rows == (0, 20_000)
    assert config.data.production_rows == (20_000, 30_000)
    assert config.scenario.name == "seed"
    assert config.columns.target == "Churn Flag"
    assert config.resolve("data/churn.csv") == workspace / "data" / "churn.csv"


def test_file_found_in_current_folder_and_paths_resolved_against_it(workspace):
    write(workspace / "churnops.toml", '[thresholds]\ndataset_drift = 0.25\n[paths]\nreference = "ref.csv"\n')
    config = load_config()
    assert config.thresholds.dataset_drift == 0.25
    assert config.resolve(config.paths.reference) == workspace / "ref.csv"


def test_overrides_win_over_the_file(workspace):
    write(workspace / "churnops.toml", "[scenario]\nintensity = 0.5\n")
    config = load_config(overrides={"scenario.intensity": 0.0, "scenario.name": None})
    assert config.scenario.intensity == 0.0
    assert config.scenario.name == "seed"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[thresholds]\ndataset_drift = 2\n", "thresholds.dataset_drift: Input should be less than or equal to 1"),
        (
            "[thresholds]\ndatset_drift = 0.2\n",
            "thresholds.datset_drift: unknown key (did you mean thresholds.dataset_drift?)",
        ),
        (
            "[drift]\nstattest = 'psi'\n",
            "drift.stattest: unknown key (stattest is Evidently's name: churnops's is drift.method)",
        ),
        ("[drift]\nfoo = 1\n", "drift.foo: unknown key; [drift] takes method, num_method, cat_method"),
        ("[nosuch]\nx = 1\n", "nosuch: unknown key; the sections are paths, data, columns"),
        ("[data]\nreference_rows = [10, 5]\n", "data.reference_rows: row range [10, 5) is empty"),
        ("[scenario]\nintensity = -1\n", "scenario.intensity: Input should be greater than or equal to 0"),
        ("[drift]\nbinning = 'magic'\n", "drift.binning: Input should be 'evidently' or 'quantile'"),
        ("thresholds = [\n", "not valid TOML"),
        ("root = '/etc'\n", "root: unknown key"),
    ],
)
def test_invalid_file_gives_one_line_naming_the_key(workspace, text, expected):
    path = write(workspace / "churnops.toml", text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert expected in message
    assert str(path) in message


def test_missing_explicit_file(workspace):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(workspace / "nope.toml")


def test_reference_rows_all_means_whole_file(workspace):
    write(workspace / "churnops.toml", '[data]\nreference_rows = "all"\n')
    assert load_config().data.reference_rows is None
    assert load_config().to_toml_dict()["data"]["reference_rows"] == "all"


def test_relative_paths_cannot_leave_the_project(workspace):
    config = Config(root=workspace)
    with pytest.raises(ConfigError, match="leaves the project folder"):
        config.resolve("../outside.csv")
    assert config.resolve("/tmp/abs.csv") == Path("/tmp/abs.csv")


def test_custom_scenario_operations_are_validated(workspace):
    write(
        workspace / "churnops.toml",
        "[scenario.custom]\nmine = [{op = 'scale', column = 'Balance'}]\n",
    )
    with pytest.raises(ConfigError, match="operation 'scale' needs factor"):
        load_config()


def test_unknown_stat_test_is_reported_with_the_known_list(workspace, cli):
    write(workspace / "churnops.toml", "[drift]\nnum_method = 'kolmogorov'\n")
    result = cli("config", "show")
    assert result.exit_code == 2
    assert "drift.num_method: unknown stat test 'kolmogorov'; known: TVD, anderson" in result.output


def test_config_show_prints_effective_toml(workspace, cli):
    write(workspace / "churnops.toml", "[thresholds]\ndataset_drift = 0.3\n")
    result = cli("config", "show")
    assert result.exit_code == 0
    assert "dataset_drift = 0.3" in result.output
    assert "data_quality = 0.95" in result.output
    json_result = cli("config", "show", "--format", "json")
    assert '"dataset_drift": 0.3' in json_result.output


def test_config_show_defaults_say_so(workspace, cli):
    result = cli("config", "show")
    assert "built-in defaults" in result.output


def test_one_column_name_is_read_as_a_list(workspace):
    (workspace / "churnops.toml").write_text('[columns]\nid = "customer_id"\ndatetime = "signup_date"\n')
    columns = load_config().columns
    assert columns.id == ["customer_id"] and columns.datetime == ["signup_date"]


@pytest.mark.parametrize(
    "key",
    [
        "spark.driver.extraJavaOptions",
        "spark.executor.extraClassPath",
        "spark.jars.packages",
        "spark.plugins",
        "spark.sql.extensions",
        "spark.pyspark.python",
        "spark.executorEnv.LD_PRELOAD",
        "spark.driver.resource.gpu.discoveryScript",
        "spark.sql.hive.metastore.jars",
        "spark.local.dir",
        "spark.sql.execution.pyspark.python",
        "spark.r.command",
        "spark.hadoop.fs.s3a.endpoint",
        "spark.kryo.registrator",
        "spark.master",
        "spark.shuffle.sort.io.plugin.class",
        "spark.metrics.conf",
    ],
)
def test_a_spark_setting_that_runs_code_is_refused_from_a_file_unless_the_environment_allows_it(
    workspace, monkeypatch, key
):
    """[spark.conf] "spark.driver.extraJavaOptions" = "-XX:OnOutOfMemoryError=./evil.sh" ran the
    program of a churnops.toml that came with a project."""
    path = workspace / "churnops.toml"
    path.write_text(f'[spark.conf]\n"{key}" = "-XX:OnOutOfMemoryError=./evil.sh"\n"spark.executor.memory" = "2g"\n')
    monkeypatch.delenv("CHURNOPS_ALLOW_ENGINE_CODE", raising=False)
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    message = str(refused.value)
    assert key in message and "CHURNOPS_ALLOW_ENGINE_CODE=1" in message and len(message.splitlines()) == 1, message
    monkeypatch.setenv("CHURNOPS_ALLOW_ENGINE_CODE", "1")
    assert load_config(path).spark.conf[key].startswith("-XX")
    monkeypatch.delenv("CHURNOPS_ALLOW_ENGINE_CODE")
    path.write_text('[spark.conf]\n"spark.executor.memory" = "2g"\n"spark.sql.shuffle.partitions" = 8\n')
    assert load_config(path).spark.conf == {"spark.executor.memory": "2g", "spark.sql.shuffle.partitions": 8}
    # a setting churnops does not know to be plain is refused too: the list is of what is allowed


def test_a_spark_master_elsewhere_needs_the_environment(workspace, monkeypatch):
    """[monitor] spark_master = "spark://host:7077" in a project's file sent the data to that
    cluster, which talks to the driver in Java serialization; local[N] needs nothing."""
    path = workspace / "churnops.toml"
    monkeypatch.delenv("CHURNOPS_ALLOW_ENGINE_CODE", raising=False)
    path.write_text('[monitor]\nspark_master = "local[2]"\n')
    assert load_config(path).monitor.spark_master == "local[2]"
    path.write_text('[monitor]\nspark_master = "spark://10.0.0.9:7077"\n')
    with pytest.raises(ConfigError, match="CHURNOPS_ALLOW_ENGINE_CODE=1"):
        load_config(path)
    monkeypatch.setenv("CHURNOPS_ALLOW_ENGINE_CODE", "1")
    assert load_config(path).monitor.spark_master == "spark://10.0.0.9:7077"
