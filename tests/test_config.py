"""conveyor.yaml: typed settings, laptop defaults, one-line errors that name the key."""

from __future__ import annotations

import json

import pytest

from conveyor.config import ModelType, Settings, Strategy, Template, defaults_for, load_settings
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
    assert settings.monitoring.schedule == "0 */6 * * *"
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

    for template in Template:
        data = defaults_for(template).model_dump(mode="json", by_alias=True, exclude_none=True)
        jsonschema.validate(data, json_schema())


def test_classifier_defaults_are_consistent():
    s = defaults_for(Template.CLASSIFIER)
    assert s.model.type is ModelType.RANDOM_FOREST
    assert s.data.target == "label"


def test_settings_are_immutable():
    s = Settings()
    with pytest.raises(Exception, match="frozen"):
        s.model.epochs = 3  # type: ignore[misc]
