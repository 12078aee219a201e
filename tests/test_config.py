"""conveyor.yaml: typed settings, laptop defaults, one-line errors that name the key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from enum import Enum, StrEnum
from typing import Any, get_args

import pytest
import typer
from pydantic import BaseModel

from conveyor.config import (
    DEPLOY_STRATEGIES,
    ModelType,
    Settings,
    Strategy,
    Template,
    defaults_for,
    derived_port,
    json_schema,
    load_settings,
    parse_settings,
)
from conveyor.errors import ConfigError


def test_empty_file_gives_laptop_defaults(make_project):
    settings = load_settings(make_project("") / "conveyor.yaml")
    assert settings.project.template is Template.RECOMMENDER
    assert settings.model.type is ModelType.ALS
    assert settings.model.embedding_dim == 128
    assert settings.deploy.strategy is Strategy.BLUE_GREEN
    assert settings.deploy.keep_previous_hours == 24
    assert settings.deploy.canary.steps == [10, 50, 100]
    assert settings.deploy.ab.variant_ratio == 0.1
    assert settings.data.drift.dataset_share == 0.5
    assert settings.workflows.monitor_cron == "0 */6 * * *"
    assert {e.host for e in settings.deploy.environments.values()} == {"127.0.0.1"}
    assert settings.registry.tracking_uri is None


def test_values_from_the_file_are_typed(make_project):
    text = """
project: {name: tabular, template: classifier}
data: {source: data/train.csv, target: churned, schema: conf/schema.yaml}
model:
  type: xgboost
  params: {max_depth: 4}
  matrix:
    - {type: random-forest, params: {n_estimators: 50}}
    - {type: lightgbm}
deploy:
  strategy: canary
  canary: {steps: [5, 25, 100], interval_seconds: 30}
alerts:
  channels:
    - {name: team, kind: slack, url_env: SLACK_WEBHOOK_URL}
"""
    s = load_settings(make_project(text) / "conveyor.yaml")
    assert s.model.type is ModelType.XGBOOST
    assert [m.type for m in s.model.matrix] == [ModelType.RANDOM_FOREST, ModelType.LIGHTGBM]
    assert s.data.schema_file == "conf/schema.yaml"
    assert s.deploy.canary.steps == [5, 25, 100]
    assert s.alerts.channels[0].url_env == "SLACK_WEBHOOK_URL"


BROKEN = [
    # (file content, key the message must name, words it must contain)
    ("model:\n  epochs: many\n", "model.epochs", "integer"),
    ("model:\n  epochz: 3\n", "model.epochz", "unknown key"),
    ("surprise: 1\n", "surprise", "unknown key"),
    ("model: [1, 2\n", "", "invalid YAML"),
    ("- just\n- a list\n", "", "mapping"),
    ("model:\n  type: svm\n", "model.type", "random-forest"),
    ("deploy:\n  canary:\n    steps: [50, 10, 100]\n", "deploy.canary.steps", "increasing"),
    ("deploy:\n  canary:\n    steps: [10, 50]\n", "deploy.canary.steps", "last step must be 100"),
    ("deploy:\n  ab:\n    variant_ratio: 1.5\n", "deploy.ab.variant_ratio", "less than 1"),
    ("project:\n  template: classifier\n", "model.type", "does not fit template"),
    ("alerts:\n  channels:\n    - {name: x, kind: slack}\n", "alerts.channels.0.url_env", "required"),
    ("deploy:\n  environments:\n    a: {port: 9000}\n    b: {port: 9000}\n", "deploy.environments", "port"),
    ("version: 2\n", "version", "1"),
    # accepted-but-unbuilt options are refused with the reason (issue 13 point 6)
    # replicas by URL (issue 15): nonsense is one line naming the key
    (
        "deploy:\n  environments:\n    p: {replicas: ['ftp://h:1']}\n",
        "deploy.environments.p.replicas",
        "http://",
    ),
    (
        "deploy:\n  environments:\n    p: {replicas: ['http://h:1', 'http://h:1/']}\n",
        "deploy.environments.p.replicas",
        "listed twice",
    ),
    ("deploy:\n  environments:\n    p: {replicas: []}\n", "deploy.environments.p.replicas", "at least one"),
    (
        "deploy:\n  environments:\n    p: {replicas: ['http://h:1/api']}\n",
        "deploy.environments.p.replicas",
        "base URL only",
    ),
    (
        "deploy:\n  environments:\n    p: {replicas: ['http://h:1'], port: 9000}\n",
        "deploy.environments.p.port",
        "not with replicas",
    ),
    (
        "deploy:\n  environments:\n    p: {replicas: ['http://h:1'], supervise: true}\n",
        "deploy.environments.p.supervise",
        "does not start or supervise",
    ),
    (
        "deploy:\n  environments:\n    p: {port: 9000, admin_token_env: TOKEN}\n",
        "deploy.environments.p.admin_token_env",
        "only for replicas",
    ),
    (
        "deploy:\n  environments:\n    p: {replicas: ['http://h:1'], admin_token_env: 'no such'}\n",
        "deploy.environments.p.admin_token_env",
        "not an environment variable name",
    ),
    (
        "deploy:\n  environments:\n    a: {replicas: ['http://h:1']}\n    b: {replicas: ['http://h:1']}\n",
        "deploy.environments",
        "belongs to two environments",
    ),
    (
        "deploy:\n  environments:\n    p: {replicas: ['http://h:1'], replicas_env: P_REPLICAS}\n",
        "deploy.environments.p.replicas_env",
        "not both",
    ),
    (
        "deploy:\n  environments:\n    p: {replicas_env: 'no such'}\n",
        "deploy.environments.p.replicas_env",
        "not an environment variable name",
    ),
    (
        "deploy:\n  environments:\n    p: {replicas_env: P_REPLICAS, port: 9000}\n",
        "deploy.environments.p.port",
        "not with replicas",
    ),
    ("project:\n  id: 'two words'\n", "project.id", "letters, digits"),
    ("deploy:\n  strategy: ab\n", "deploy.strategy", "conveyor ab start"),
    ("deploy:\n  strategy: shadow\n", "deploy.strategy", "'blue-green', 'canary' or 'rolling'"),
    ("data:\n  sql: SELECT 1\n", "data.sql", "CSV or Parquet"),
    ("monitoring:\n  schedule: '0 * * * *'\n", "monitoring.schedule", "workflows.monitor_cron"),
    ("deploy:\n  ab:\n    metric: ctr\n", "deploy.ab.metric", "click-through rate"),
    ("serving:\n  request_log:\n    uri: gs://logs/x\n", "serving.request_log.uri", "S3 only"),
    ("serving:\n  request_log:\n    uri: 's3://'\n", "serving.request_log.uri", "s3://bucket/prefix"),
    ("serving:\n  request_log:\n    uri: s3://b/p\n    dir: logs\n", "serving.request_log", "not both"),
    ("data:\n  remote: /mnt/dvc\n", "data.remote", "s3://bucket/prefix"),
]


@pytest.mark.parametrize(("text", "key", "words"), BROKEN)
def test_broken_config_names_file_and_key(make_project, text, key, words):
    path = make_project(text) / "conveyor.yaml"
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert info.value.key == key
    if key:
        assert f": {key}: " in message
    assert words in message
    assert "\n" not in message


@pytest.mark.parametrize(("text", "key"), [(t, k) for t, k, _ in BROKEN])
def test_broken_config_exits_2_with_one_line_on_the_cli(cli, make_project, text, key):
    root = make_project(text)
    result = cli("config", "check", "--project", str(root))
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "conveyor.yaml" in lines[0]
    assert key in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "conveyor.yaml")


def test_config_that_is_a_directory(tmp_path):
    (tmp_path / "conveyor.yaml").mkdir()
    with pytest.raises(ConfigError, match="directory"):
        load_settings(tmp_path / "conveyor.yaml")


def test_config_that_is_not_utf8(tmp_path):
    (tmp_path / "conveyor.yaml").write_bytes(b"project:\n  name: \xff\xfe\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_settings(tmp_path / "conveyor.yaml")


def test_broken_config_with_json_prints_one_error_object(cli, make_project):
    root = make_project("model:\n  epochs: many\n")
    result = cli("config", "check", "--project", str(root), "--json")
    assert result.exit_code == 2
    payload = result.json()
    assert payload["ok"] is False
    assert payload["error"]["type"] == "ConfigError"
    assert payload["error"]["key"] == "model.epochs"


def test_json_schema_describes_every_section(cli):
    result = cli("config", "schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert set(schema["properties"]) >= {
        "project", "data", "model", "gates", "registry", "serving",
        "deploy", "monitoring", "alerts", "workflows",
    }  # fmt: skip
    assert schema["additionalProperties"] is False


def test_json_schema_accepts_the_defaults():
    jsonschema = pytest.importorskip("jsonschema")
    from conveyor.config import json_schema

    validator = jsonschema.Draft202012Validator(json_schema())
    for template in Template:
        data = defaults_for(template).model_dump(mode="json", by_alias=True, exclude_none=True)
        assert [e.message for e in validator.iter_errors(data)] == [], template


def test_classifier_defaults_are_consistent():
    s = defaults_for(Template.CLASSIFIER)
    assert s.model.type is ModelType.RANDOM_FOREST
    assert s.data.target == "label"


def test_settings_are_immutable():
    s = Settings()
    with pytest.raises(Exception, match="frozen"):
        s.model.epochs = 3  # type: ignore[misc]


def _enums(model: type[BaseModel]) -> dict[str, type[StrEnum]]:
    """Every StrEnum-typed field under ``model``, by its $defs name."""
    found: dict[str, type[StrEnum]] = {}
    for info in model.model_fields.values():
        for arg in (info.annotation, *get_args(info.annotation)):
            for inner in (arg, *get_args(arg)):
                if isinstance(inner, type) and issubclass(inner, StrEnum):
                    found[inner.__name__] = inner
                elif isinstance(inner, type) and issubclass(inner, BaseModel):
                    found.update(_enums(inner))
    return found


def test_every_enumerated_option_is_listed_in_the_json_schema():
    schema = json_schema()
    enums = _enums(Settings)
    assert {"Strategy", "ModelType", "Template", "DriftMethod", "RetrainAction"} <= set(enums)
    # alert channel kinds come from the extension point (built-ins and plugins alike)
    kind = schema["$defs"]["AlertChannel"]["properties"]["kind"]
    assert kind["enum"] == ["discord", "slack", "webhook"]
    for name, enum in enums.items():
        assert schema["$defs"][name]["enum"] == [m.value for m in enum], name
    assert schema["$defs"]["Strategy"]["enum"] == ["blue-green", "canary", "rolling"]
    assert (
        "blue-green, canary, rolling"
        in schema["$defs"]["DeploySection"]["properties"]["strategy"]["description"]
    )
    assert "sql" not in schema["$defs"]["DataSection"]["properties"]
    assert "schedule" not in schema["$defs"]["MonitoringSection"]["properties"]
    assert "metric" not in schema["$defs"]["ABSection"]["properties"]


def test_the_json_schema_refuses_what_is_not_built():
    jsonschema = pytest.importorskip("jsonschema")
    for data in ({"deploy": {"strategy": "shadow"}}, {"deploy": {"strategy": "ab"}}, {"data": {"sql": "x"}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(data, json_schema())


def test_strategy_rolling_is_accepted_now_that_it_is_built(cli, make_project):
    root = make_project("deploy:\n  strategy: rolling\n")
    result = cli("config", "check", "--project", str(root))
    assert result.exit_code == 0, result.stderr
    assert load_settings(root / "conveyor.yaml").deploy.strategy is Strategy.ROLLING


def test_default_ports_are_derived_from_the_project_id():
    one = parse_settings({"project": {"name": "shop", "id": "shop-a1b2c3"}}).deploy.environments
    same = parse_settings({"project": {"name": "other", "id": "shop-a1b2c3"}}).deploy.environments
    two = parse_settings({"project": {"name": "shop", "id": "shop-ffffff"}}).deploy.environments
    expected = derived_port("shop-a1b2c3", 0)
    assert (one["staging"].port, one["production"].port) == (expected, expected + 1)
    assert 20000 <= expected < 30000
    assert {e.port for e in same.values()} == {e.port for e in one.values()}  # the id decides, not the name
    assert {e.port for e in two.values()}.isdisjoint({e.port for e in one.values()})
    # an explicit port wins; a remote environment has none
    mixed = parse_settings(
        {"deploy": {"environments": {"a": {"port": 9000}, "b": {"replicas": ["https://h.example:8443/"]}}}}
    ).deploy.environments
    assert mixed["a"].port == 9000
    assert mixed["b"].port is None
    assert mixed["b"].replicas == ["https://h.example:8443"]
    assert mixed["b"].remote


def test_replicas_env_reads_the_urls_from_its_variable_when_the_file_is_read(monkeypatch, make_project):
    from conveyor.errors import UsageError

    raw = {"deploy": {"environments": {"s": {}, "p": {"replicas_env": "P_REPLICAS"}}}}
    monkeypatch.setenv("P_REPLICAS", "http://10.0.0.1:8100, https://rec-2.internal/ http://[::1]:9")
    p = parse_settings(raw).deploy.environments["p"]
    assert p.remote
    assert p.port is None
    assert p.replica_urls() == ["http://10.0.0.1:8100", "https://rec-2.internal", "http://[::1]:9"]
    # unset: still remote (never a server of its own), and asking for the URLs names the variable
    monkeypatch.delenv("P_REPLICAS")
    unset = parse_settings(raw).deploy.environments["p"]
    assert unset.remote
    assert unset.port is None
    assert unset.replicas is None
    with pytest.raises(UsageError, match=r"^environment variable P_REPLICAS \(the replicas' URLs, named in "):
        unset.replica_urls()
    # a bad URL in the variable: one line naming the key and the variable
    monkeypatch.setenv("P_REPLICAS", "http://ok:1 ftp://bad:2")
    path = make_project("deploy:\n  environments:\n    p: {replicas_env: P_REPLICAS}\n") / "conveyor.yaml"
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.key == "deploy.environments.p.replicas_env"
    assert "P_REPLICAS: 'ftp://bad:2': a replica URL must start with http://" in str(info.value)


def test_deploy_strategy_choices_follow_the_enum(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    assert ("direct", *(s.value for s in Strategy)) == DEPLOY_STRATEGIES
    help_text = cli("deploy", "--help").stdout
    assert "[direct|blue-green|canary|rolling]" in help_text


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("ab", "conveyor ab start"),
        ("Canary", "not one of direct, blue-green, canary, rolling"),
    ],
)
def test_deploy_strategy_accepts_only_listed_values(cli, make_project, value, words):
    root = make_project("")
    result = cli("--project", str(root), "deploy", "--env", "production", "--strategy", value)
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert "--strategy" in line
    assert words in line


def _enum_options(
    command: Any, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], str, list[str]]]:
    """(command path, option, choices) of every Enum-typed option of the CLI."""
    for param in getattr(command, "params", []):
        annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
        for arg in (annotation, *get_args(annotation)):
            if isinstance(arg, type) and issubclass(arg, Enum):
                yield path, param.name, [str(m.value) for m in arg]
    for name, sub in getattr(command, "commands", {}).items():
        yield from _enum_options(sub, (*path, name))


def test_every_enumerated_cli_option_lists_its_choices_in_help(cli, monkeypatch):
    from conveyor.cli import app

    monkeypatch.setenv("COLUMNS", "250")  # no wrapping inside the option table

    options = list(_enum_options(typer.main.get_command(app)))
    assert {name for _, name, _ in options} >= {"template", "model_type", "kind", "fmt"}
    for path, name, choices in options:
        text = "".join(cli(*path, "--help").stdout.split())
        for choice in choices:
            assert choice in text, (path, name, choice)
