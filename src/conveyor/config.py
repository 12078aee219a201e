"""``conveyor.yaml`` → typed, validated settings.

This is the only module that reads ``conveyor.yaml`` and the only one that
reads environment variables (:func:`secret_from_env`). Every section has
defaults that run on one laptop: MLflow on SQLite under ``.conveyor/``, DVC
with a local remote, servers on 127.0.0.1.

A wrong file raises :class:`~conveyor.errors.ConfigError` whose one-line
message names the file, the dotted key path and what was expected.
"""

from __future__ import annotations

import hashlib
import os
import re
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from conveyor.errors import ConfigError, ExtensionError, UsageError
from conveyor.extensions import (
    ALERT_CHANNELS,
    DEPLOYMENT_STRATEGIES,
    DRIFT_TESTS,
    MODEL_TYPES,
    ExtensionPoint,
)

CONFIG_FILENAME = "conveyor.yaml"
STATE_DIRNAME = ".conveyor"

DEFAULT_HOST = "127.0.0.1"
# Default ports come from the project's id (docs/deploy.md, "Identity"): a block of
# PORT_BLOCK_SIZE ports in [PORT_RANGE_START, PORT_RANGE_START + PORT_BLOCKS * PORT_BLOCK_SIZE),
# below Linux's ephemeral range, one port per local environment in the order they are listed.
PORT_RANGE_START = 20000
PORT_BLOCKS = 1000
PORT_BLOCK_SIZE = 10
DEFAULT_ENVIRONMENTS = ("staging", "production")
_ENV_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PROJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
DEFAULT_DRIFT_THRESHOLD = 0.1
DEFAULT_DRIFT_SHARE = 0.5
DEFAULT_ALPHA = 0.05
DEFAULT_KEEP_PREVIOUS_HOURS = 24.0
DEFAULT_CANARY_STEPS = (10, 50, 100)
DEFAULT_AB_RATIO = 0.1


class _Section(BaseModel):
    """Base of every section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _NotBuilt(ValueError):
    """A key or value that names something Conveyor does not do; ``key`` is below the section."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


def _refuse_removed(data: Any, removed: dict[str, str]) -> Any:
    """Raise for the first key of ``removed`` present in a section's raw mapping."""
    if isinstance(data, dict):
        for key, reason in removed.items():
            if key in data:
                raise _NotBuilt(key, reason)
    return data


# -- enums ---------------------------------------------------------------------
class Template(StrEnum):
    RECOMMENDER = "recommender"
    CLASSIFIER = "classifier"


def _registered(
    point: ExtensionPoint, base: type[StrEnum], name: str, *, without: tuple[str, ...] = ()
) -> Any:
    """An enum ``name`` (a subclass of the member-less ``base``) whose members are the names installed
    in ``point``: built-ins and plugins alike, so that pydantic, the JSON Schema and Typer's choices
    follow the registry. Member names are the values in upper case (``random-forest`` →
    ``RANDOM_FOREST``)."""
    names = [n for n in point.names() if n not in without]
    if not names:
        raise ExtensionError(
            f"no {point.what} is installed in {point.group!r}: Conveyor's own package metadata is "
            "missing or stale; reinstall it (pip install -e .)"
        )
    make: Any = base  # the functional API (Enum("Name", members)), which mypy cannot follow
    return make(name, [(n.upper().replace("-", "_").replace(".", "_"), n) for n in names], module=__name__)


def _registered_object(point: ExtensionPoint, name: str, attribute: str) -> Any:
    value = getattr(point.load(name), attribute, None)
    if value is None:
        raise ExtensionError(f"{point.what} {name!r} has no {attribute!r}")
    return value


class _RegisteredModelType(StrEnum):
    """Base of :data:`ModelType`; what configuration checks need of a registered model type."""

    @property
    def kind(self) -> str:
        """ "recommender" or "classifier" (the template it fits)."""
        return str(_registered_object(MODEL_TYPES, self.value, "kind"))

    @property
    def is_recommender(self) -> bool:
        return self.kind == Template.RECOMMENDER.value

    @property
    def engines(self) -> tuple[str, ...]:
        """Where it can be fitted (``model.engine`` values)."""
        return tuple(_registered_object(MODEL_TYPES, self.value, "engines"))


# ``model.type``: every name registered in ``conveyor.model_types`` (conveyor.models.ModelTypeSpec)
if TYPE_CHECKING:
    ModelType = _RegisteredModelType
else:
    ModelType = _registered(MODEL_TYPES, _RegisteredModelType, "ModelType")


def spark_model_types() -> list[str]:
    """The registered model types ``model.engine: spark`` can fit."""
    return [t.value for t in ModelType if Engine.SPARK.value in t.engines]


# how ``model.engine: spark`` fits the built-in types that declare the spark engine
_SPARK_TRAINERS = {"als": "Spark MLlib ALS", "xgboost": "xgboost.spark"}


def spark_refusal(model_type: ModelType) -> str | None:
    """Why ``model.engine: spark`` cannot train ``model_type`` (None when it can)."""
    if Engine.SPARK.value in model_type.engines:
        return None
    trained = ", ".join(
        f"'{n}' ({_SPARK_TRAINERS.get(n, 'its plugin')})" for n in sorted(spark_model_types())
    )
    return f"model.engine spark trains {trained} only; '{model_type.value}' trains with model.engine local"


class Engine(StrEnum):
    """``model.engine``: where a model is fitted."""

    LOCAL = "local"  # implicit / XGBoost / LightGBM in this process (the default)
    SPARK = "spark"  # Spark MLlib ALS / xgboost.spark on spark.master; saved as the same Java-free flavour


class _RegisteredStrategy(StrEnum):
    """Base of :data:`Strategy`."""


# the plain switch, the default outside production: a --strategy value, not a deploy.strategy one
DIRECT_STRATEGY = "direct"

# ``deploy.strategy``: how ``conveyor deploy`` moves production to a new version — every name
# registered in ``conveyor.deploy_strategies`` (conveyor.deploy.DeployStrategy) but direct
if TYPE_CHECKING:
    Strategy = _RegisteredStrategy
else:
    Strategy = _registered(DEPLOYMENT_STRATEGIES, _RegisteredStrategy, "Strategy", without=(DIRECT_STRATEGY,))

# ``conveyor deploy --strategy``: ``direct`` and every Strategy, derived so the flag and its
# --help follow the registry.
DEPLOY_STRATEGIES: tuple[str, ...] = (DIRECT_STRATEGY, *(s.value for s in Strategy))

# Values users try that Conveyor refuses, with the reason (config, --strategy and
# the deploy API give the same one-line answer).
NOT_BUILT_STRATEGIES: dict[str, str] = {
    "ab": "'ab' is not a deploy strategy: an A/B test is its own command, "
    "`conveyor ab start --variant-ratio R`; use blue-green or canary",
}


class DriftMethod(StrEnum):
    DISTANCE = "distance"  # decide on effect size (default; right for large samples)
    PVALUE = "pvalue"  # decide on p-values, Benjamini–Hochberg across columns


class SplitMethod(StrEnum):
    PER_USER = "per-user"  # each user's last interactions held out (the default)
    GLOBAL_TIME = "global-time"  # the last model.holdout_days of the whole log held out


class InsufficientEvidence(StrEnum):
    FAIL = "fail"  # "not enough evidence" stops the pipeline (exit 1)
    CONTINUE = "continue"  # reported, but the pipeline goes on (exit 0)


class RetrainAction(StrEnum):
    GITHUB = "github"
    LOCAL = "local"
    NONE = "none"


# -- project -------------------------------------------------------------------
class ProjectSection(_Section):
    name: str = "conveyor-project"
    # Every server answers /version with it; deploy, smoke, status, rollback and monitor refuse a
    # server of another project. `conveyor init` writes the name plus a random suffix; unset, the
    # name is the id (two projects of one name on one machine then need their own ids).
    id: str | None = None
    template: Template = Template.RECOMMENDER
    state_dir: str = STATE_DIRNAME

    @field_validator("id")
    @classmethod
    def _id_is_a_token(cls, value: str | None) -> str | None:
        if value is not None and not _PROJECT_ID.match(value):
            raise ValueError("must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @property
    def identity(self) -> str:
        """The project's id: ``id``, else the name."""
        return self.id or self.name


# -- data ------------------------------------------------------------------------
def _list_drift_tests(schema: dict[str, Any]) -> None:
    schema["enum"] = list(DRIFT_TESTS.names())


def _list_drift_tests_by_column(schema: dict[str, Any]) -> None:
    schema["additionalProperties"] = {"type": "string", "enum": list(DRIFT_TESTS.names())}


def _installed_drift_test(name: str, kind: str | None = None) -> str:
    if name not in DRIFT_TESTS.names():
        raise ValueError(DRIFT_TESTS.unknown(name))
    if kind is not None and kind not in _registered_object(DRIFT_TESTS, name, "kinds"):
        raise ValueError(f"drift test {name!r} does not compare {kind} columns")
    return name


class DriftTests(_Section):
    """``data.drift.tests``: the registered drift test (conveyor.data.DriftTest) of each column kind."""

    numeric: str = Field(
        "wasserstein", description="a drift test for numeric columns", json_schema_extra=_list_drift_tests
    )
    categorical: str = Field(
        "jensen_shannon",
        description="a drift test for categorical columns",
        json_schema_extra=_list_drift_tests,
    )

    @field_validator("numeric", "categorical")
    @classmethod
    def _test_is_installed(cls, name: str, info: ValidationInfo) -> str:
        return _installed_drift_test(name, info.field_name)


class DriftSection(_Section):
    method: DriftMethod = DriftMethod.DISTANCE
    numeric_threshold: float = Field(DEFAULT_DRIFT_THRESHOLD, gt=0)
    categorical_threshold: float = Field(DEFAULT_DRIFT_THRESHOLD, gt=0)
    null_rate_threshold: float = Field(DEFAULT_DRIFT_THRESHOLD, gt=0)  # Cohen's h of the null rates
    alpha: float = Field(DEFAULT_ALPHA, gt=0, lt=1)
    dataset_share: float = Field(DEFAULT_DRIFT_SHARE, gt=0, le=1)
    columns: list[str] | None = None  # None: every column the schema knows
    ignore: list[str] = Field(default_factory=list)
    tests: DriftTests = Field(default_factory=DriftTests)
    column_tests: dict[str, str] = Field(
        default_factory=dict,
        description="column → the registered drift test of that column (over tests)",
        json_schema_extra=_list_drift_tests_by_column,
    )

    @field_validator("column_tests")
    @classmethod
    def _tests_are_installed(cls, chosen: dict[str, str]) -> dict[str, str]:
        for column, name in chosen.items():
            if name not in DRIFT_TESTS.names():
                raise _NotBuilt(column, DRIFT_TESTS.unknown(name))
        return chosen


class RecommenderColumns(_Section):
    user: str = "user_id"
    item: str = "item_id"
    timestamp: str = "timestamp"
    event: str | None = "event"
    weight: str | None = None


class DataSection(_Section):
    source: str = "data/raw/interactions.parquet"
    window_days: int | None = Field(None, gt=0)  # "the last 7 days of interactions"
    schema_file: str = Field("schema.yaml", alias="schema")
    reference_profile: str | None = None  # default: .conveyor/reference-profile.json
    target: str | None = None  # classifier label column
    columns: RecommenderColumns = Field(default_factory=RecommenderColumns)
    event_weights: dict[str, float] = Field(
        default_factory=lambda: {"view": 1.0, "add_to_cart": 4.0, "purchase": 10.0}
    )
    drift: DriftSection = Field(default_factory=DriftSection)
    # the DVC remote: None, the project's own .dvc-remote folder (one laptop); s3://bucket/prefix (a team)
    remote: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("remote")
    @classmethod
    def _s3_remote(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith("s3://") or not value.removeprefix("s3://").split("/", 1)[0]:
            raise ValueError(f"{value!r}: expected s3://bucket/prefix (a shared DVC remote is S3 only)")
        return value.rstrip("/")

    @model_validator(mode="before")
    @classmethod
    def _no_sql(cls, data: Any) -> Any:
        return _refuse_removed(
            data, {"sql": "not built: data is read from CSV or Parquet files; export the query result to one"}
        )


# -- model ---------------------------------------------------------------------
class MatrixEntry(_Section):
    type: ModelType
    params: dict[str, Any] = Field(default_factory=dict)


class ModelSection(_Section):
    type: ModelType = ModelType("als")
    engine: Engine = Engine.LOCAL
    params: dict[str, Any] = Field(default_factory=dict)
    matrix: list[MatrixEntry] = Field(default_factory=list)
    primary_metric: str = "ndcg_at_10"
    seed: int = 42
    test_size: float = Field(0.2, gt=0, lt=1)  # classifier: stratified hold-out share
    holdout_days: int = Field(7, gt=0)  # recommender, evaluation.split global-time: last days held out
    embedding_dim: int = Field(128, gt=0)
    epochs: int = Field(15, gt=0)
    k: int = Field(10, gt=0)
    eval_users: int = Field(10_000, gt=0)  # recommender: held-out users scored (seeded sample)


# -- evaluation ----------------------------------------------------------------
class EvaluationSection(_Section):
    """How the held-out set is made and how much of it a decision needs."""

    split: SplitMethod = SplitMethod.PER_USER
    holdout_last_fraction: float = Field(0.2, gt=0, lt=1)  # per-user: the last share of each user's items …
    holdout_last_n: int | None = Field(None, gt=0)  # … or each user's last n (distinct) items
    min_user_interactions: int = Field(5, ge=2)  # per-user: fewer distinct items → training only (counted)
    min_evaluated: int = Field(50, gt=0)  # users (recommender) or rows (classifier)
    not_enough_evidence: InsufficientEvidence = InsufficientEvidence.FAIL
    confidence: float = Field(0.95, gt=0.5, lt=1)  # one-sided level of the paired gates
    positive_class: str | int | bool | None = None  # classifier; None: the minority class
    baseline_metric: str | None = None  # None: primary metric (recommender), average_precision (classifier)

    @model_validator(mode="after")
    def _n_below_minimum(self) -> EvaluationSection:
        if self.holdout_last_n is not None and self.holdout_last_n >= self.min_user_interactions:
            raise ValueError(
                f"holdout_last_n ({self.holdout_last_n}) must be below "
                f"min_user_interactions ({self.min_user_interactions}), "
                "so that every evaluated user keeps history to train on"
            )
        return self


# -- gates -----------------------------------------------------------------------
class RegressionGate(_Section):
    metric: str = "ndcg_at_10"
    tolerance: float = Field(0.02, ge=0)
    mode: Literal["relative", "absolute"] = "relative"
    higher_is_better: bool = True


class GatesSection(_Section):
    min_metrics: dict[str, float] = Field(default_factory=dict)
    no_regression: RegressionGate | None = Field(default_factory=RegressionGate)
    beat_baseline: bool = True
    determinism: bool = True
    latency_p95_ms: float | None = Field(100.0, gt=0)
    max_artifact_mb: float | None = Field(500.0, gt=0)


# -- registry ------------------------------------------------------------------
class RegistrySection(_Section):
    tracking_uri: str | None = None  # None: sqlite:///<project>/.conveyor/mlflow.db
    artifact_location: str | None = None  # None: <project>/.conveyor/mlartifacts; with a server: its store
    experiment: str | None = None  # None: the project name
    model_name: str | None = None  # None: the project name
    # an MLflow server: how long one request may wait for its answer, and how often a request
    # that failed (no connection, a 5xx, that timeout) is tried again — so a dead or hung server
    # stops a command in about (retries + 1) × timeout_seconds instead of MLflow's ~16 minutes
    timeout_seconds: int = Field(30, ge=1, le=3600)
    retries: int = Field(2, ge=0, le=10)


# -- Conveyor's own state ----------------------------------------------------------
class StateSection(_Section):
    """Where Conveyor keeps its ledger, locks, experiments and monitoring state (conveyor.state).

    ``uri_env`` names the environment variable holding a ``postgresql://user:password@host/db``
    URI (a secret: read from the environment only, never printed); when it is empty or the
    variable is unset, the state stays in the project's local folder (``project.state_dir``).
    """

    uri_env: str | None = "CONVEYOR_STATE_URI"
    # how long one statement may wait for the PostgreSQL server's answer: a frozen server (a paused
    # VM, a stopped process: connections open, nothing answers) stops a command instead of hanging it
    timeout_seconds: float = Field(30.0, gt=0, le=600)

    @model_validator(mode="before")
    @classmethod
    def _no_uri(cls, data: Any) -> Any:
        return _refuse_removed(
            data,
            {
                "uri": "not accepted: a URI carries the database password; put it in an environment "
                "variable and name that variable in state.uri_env"
            },
        )


# -- serving -------------------------------------------------------------------
class RequestLogSection(_Section):
    enabled: bool = True
    dir: str | None = None  # None: .conveyor/requests/<env>
    # s3://bucket/prefix: every replica writes its parts under <uri>/<env>/date=…/hour=…/ (a team)
    uri: str | None = None
    flush_rows: int = Field(1000, gt=0)
    flush_seconds: float = Field(1.0, gt=0)

    @field_validator("uri")
    @classmethod
    def _s3_only(cls, value: str | None) -> str | None:
        if value is None:
            return None
        bucket = value.removeprefix("s3://").split("/", 1)[0]
        if not value.startswith("s3://") or not bucket:
            raise ValueError(f"{value!r}: expected s3://bucket/prefix (object storage is S3 only)")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_destination(self) -> RequestLogSection:
        if self.uri is not None and self.dir is not None:
            raise ValueError("set dir (a local folder) or uri (S3), not both")
        return self


class ServingSection(_Section):
    host: str = DEFAULT_HOST
    max_batch_size: int = Field(64, gt=0)
    max_wait_ms: float = Field(2.0, ge=0)
    max_rows_per_request: int = Field(10_000, gt=0)
    max_body_bytes: int = Field(10 * 1024 * 1024, gt=0)
    workers_threads: int = Field(1, gt=0)  # model calls at once; micro-batching fills them (GIL-bound models)
    admin_token_env: str | None = "CONVEYOR_ADMIN_TOKEN"
    request_log: RequestLogSection = Field(default_factory=RequestLogSection)


# -- deploy --------------------------------------------------------------------
_LOCAL_ONLY = ("port", "host", "supervise", "restart_limit", "restart_backoff_seconds")


class EnvironmentSettings(_Section):
    # local (the default): one supervised `conveyor serve` on host:port. None: derived from
    # project.id (filled in when the file is read, see Settings._derive_ports)
    port: int | None = Field(None, gt=0, lt=65536)
    host: str = DEFAULT_HOST
    # a watchdog process restarts the server when it dies (docs/deploy.md, "Supervision")
    supervise: bool = True
    restart_limit: int = Field(5, ge=0)  # restarts within 10 minutes before the watchdog gives up
    restart_backoff_seconds: float = Field(1.0, ge=0)  # first wait before a restart, doubled each time
    # a live but hung server: this many consecutive failed GET /health probes (0: no probe) → kill -9, restart
    liveness_failures: int = Field(3, ge=0)
    liveness_timeout_seconds: float = Field(5.0, gt=0)  # one probe's timeout
    # remote: long-running `conveyor serve` replicas given by URL, started by their platform
    # (systemd, Kubernetes, by hand); Conveyor never starts, stops or supervises them
    replicas: list[str] | None = Field(
        None, description="Base URLs (http:// or https://) of the environment's long-running replicas"
    )
    # or the name of an environment variable holding them (comma or space separated), so that a
    # CI job gets them from its deployment environment's variables: read when the file is read
    replicas_env: str | None = Field(
        None, description="Environment variable holding the replicas' base URLs (comma or space separated)"
    )
    admin_token_env: str | None = Field(
        None, description="Environment variable holding the replicas' admin token (remote environments)"
    )
    # folders of the replicas' request logs the canary and A/B analyses pool (default: the
    # environment's request-log folder; part files of many replicas may share one folder)
    request_logs: list[str] = Field(default_factory=list)

    @property
    def remote(self) -> bool:
        return self.replicas is not None or self.replicas_env is not None

    def replica_urls(self) -> list[str]:
        """The replicas' base URLs; a UsageError when they come from a variable that is not set."""
        if self.replicas is not None:
            return list(self.replicas)
        if self.replicas_env is not None:
            raise UsageError(
                f"environment variable {self.replicas_env} (the replicas' URLs, named in replicas_env) "
                "is not set",
                variable=self.replicas_env,
            )
        raise UsageError("a local environment has no replicas given by URL")

    @model_validator(mode="before")
    @classmethod
    def _replicas_from_variable(cls, data: Any) -> Any:
        """``replicas_env``: the URLs from that variable when it is set (refused beside ``replicas``)."""
        if not isinstance(data, dict) or data.get("replicas_env") is None:
            return data
        var = data["replicas_env"]
        if "replicas" in data:
            raise _NotBuilt(
                "replicas_env", "set replicas (the URLs) or replicas_env (their variable), not both"
            )
        if not isinstance(var, str) or not _ENV_VAR_NAME.match(var):
            raise _NotBuilt("replicas_env", f"not an environment variable name (got {var!r})")
        value = (os.environ.get(var) or "").replace(",", " ").split()
        if not value:
            return data  # unset: remote, its URLs unknown here (a command that needs them says so)
        try:
            urls = [replica_base_url(url) for url in value]
        except ValueError as exc:
            raise _NotBuilt("replicas_env", f"{var}: {exc}") from None
        return {**data, "replicas": urls}

    @field_validator("replicas")
    @classmethod
    def _replica_urls(cls, urls: list[str] | None) -> list[str] | None:
        if urls is None:
            return None
        if not urls:
            raise ValueError("must list at least one replica URL (or remove the key for a local server)")
        seen: set[str] = set()
        cleaned = []
        for url in urls:
            base = replica_base_url(url)
            if base in seen:
                raise ValueError(f"{url!r} is listed twice")
            seen.add(base)
            cleaned.append(base)
        return cleaned

    @field_validator("admin_token_env")
    @classmethod
    def _token_variable(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_VAR_NAME.match(value):
            raise ValueError(f"not an environment variable name (got {value!r})")
        return value

    @model_validator(mode="after")
    def _remote_or_local(self) -> EnvironmentSettings:
        if self.remote:
            for key in _LOCAL_ONLY:
                if key in self.model_fields_set:
                    raise _NotBuilt(
                        key,
                        "not with replicas (a remote environment's replicas are addressed by URL "
                        "and run under their own platform; Conveyor does not start or supervise them)",
                    )
        elif self.admin_token_env is not None:
            raise _NotBuilt(
                "admin_token_env",
                "only for replicas given by URL (a local server's token is generated "
                "under .conveyor/envs/<env>/admin-token)",
            )
        return self


def replica_base_url(url: str) -> str:
    """``url`` as a replica base URL (``scheme://host:port``); ValueError naming what is wrong."""
    from urllib.parse import urlsplit

    if not isinstance(url, str):
        raise ValueError(f"a replica must be a URL string (got {url!r})")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{url!r}: a replica URL must start with http:// or https://")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r}: invalid port") from None
    if not parts.hostname:
        raise ValueError(f"{url!r}: no host")
    if parts.path.strip("/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{url!r}: give the replica's base URL only (no path, query or credentials)")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def derived_port(project_id: str, index: int) -> int:
    """The default port of the ``index``-th local environment of project ``project_id``."""
    block = int.from_bytes(hashlib.sha256(project_id.encode()).digest()[:8], "big") % PORT_BLOCKS
    return PORT_RANGE_START + block * PORT_BLOCK_SIZE + index


class CanarySection(_Section):
    steps: list[int] = Field(default_factory=lambda: list(DEFAULT_CANARY_STEPS))
    interval_seconds: float = Field(60.0, ge=0)
    min_requests: int = Field(200, gt=0)
    max_error_rate_increase: float = Field(0.01, ge=0)
    max_p99_ratio: float = Field(1.5, gt=0)
    alpha: float = Field(DEFAULT_ALPHA, gt=0, lt=1)

    @field_validator("steps")
    @classmethod
    def _steps_increase_to_100(cls, steps: list[int]) -> list[int]:
        if not steps or any(not 0 < s <= 100 for s in steps) or steps != sorted(set(steps)):
            raise ValueError("must be increasing percentages in (0, 100], e.g. [10, 50, 100]")
        if steps[-1] != 100:
            raise ValueError("the last step must be 100")
        return steps


class ABSection(_Section):
    variant_ratio: float = Field(DEFAULT_AB_RATIO, gt=0, lt=1)
    alpha: float = Field(DEFAULT_ALPHA, gt=0, lt=1)
    power: float = Field(0.8, gt=0, lt=1)
    min_detectable_effect: float = Field(0.2, gt=0)  # relative lift of click-through rate

    @model_validator(mode="before")
    @classmethod
    def _no_metric(cls, data: Any) -> Any:
        # the A/B test decides on click-through rate only; the key chose nothing
        return _refuse_removed(data, {"metric": "removed: the A/B test always decides on click-through rate"})


class SmokeSection(_Section):
    latency_budget_ms: float = Field(200.0, gt=0)
    requests: int = Field(20, gt=0)


class DeploySection(_Section):
    environments: dict[str, EnvironmentSettings] = Field(
        default_factory=lambda: {name: EnvironmentSettings() for name in DEFAULT_ENVIRONMENTS}
    )
    strategy: Strategy = Field(
        Strategy("blue-green"),
        description=f"{', '.join(s.value for s in Strategy)} (A/B tests are `conveyor ab start`)",
    )
    keep_previous_hours: float = Field(DEFAULT_KEEP_PREVIOUS_HOURS, ge=0)
    health_timeout_seconds: float = Field(60.0, gt=0)
    canary: CanarySection = Field(default_factory=CanarySection)
    ab: ABSection = Field(default_factory=ABSection)
    smoke: SmokeSection = Field(default_factory=SmokeSection)

    @field_validator("strategy", mode="before")
    @classmethod
    def _strategy_is_built(cls, value: Any) -> Any:
        if isinstance(value, str) and value in NOT_BUILT_STRATEGIES:
            raise _NotBuilt("", NOT_BUILT_STRATEGIES[value])
        return value


# -- monitoring ------------------------------------------------------------------
class SLOSection(_Section):
    p99_latency_ms: float = Field(100.0, gt=0)
    error_rate: float = Field(0.01, ge=0, le=1)


class GitHubDispatch(_Section):
    repository: str | None = None  # owner/name
    workflow: str = "weekly-retrain.yml"
    ref: str = "main"
    token_env: str = "GITHUB_TOKEN"
    api_url: str = "https://api.github.com"


class RetrainPolicy(_Section):
    action: RetrainAction = RetrainAction.LOCAL
    on_dataset_drift: bool = True
    metric_drop_pct: float | None = Field(10.0, gt=0)
    max_model_age_days: float | None = Field(7.0, gt=0)
    cooldown_hours: float = Field(24.0, ge=0)
    github: GitHubDispatch = Field(default_factory=GitHubDispatch)


class MonitoringSection(_Section):
    slo: SLOSection = Field(default_factory=SLOSection)
    min_requests: int = Field(100, gt=0)
    retrain: RetrainPolicy = Field(default_factory=RetrainPolicy)

    @model_validator(mode="before")
    @classmethod
    def _no_schedule(cls, data: Any) -> Any:
        return _refuse_removed(
            data,
            {"schedule": "removed: the monitoring workflow runs on workflows.monitor_cron; set it there"},
        )


# -- alerts --------------------------------------------------------------------
def _list_alert_channels(schema: dict[str, Any]) -> None:
    schema["enum"] = list(ALERT_CHANNELS.names())


class AlertChannel(_Section):
    name: str
    kind: str = Field(
        description="slack, discord, webhook, or a kind a plugin package registers (docs/extending.md)",
        json_schema_extra=_list_alert_channels,
    )
    url_env: str = Field(description="Name of the environment variable holding the webhook URL")

    @field_validator("kind")
    @classmethod
    def _kind_is_installed(cls, kind: str) -> str:
        if kind not in ALERT_CHANNELS.names():
            raise ValueError(ALERT_CHANNELS.unknown(kind))
        return kind


class AlertsSection(_Section):
    channels: list[AlertChannel] = Field(default_factory=list)
    cooldown_minutes: float = Field(60.0, ge=0)
    retries: int = Field(3, ge=0)
    timeout_seconds: float = Field(5.0, gt=0)  # how long a receiver may take to answer one request
    resend_unanswered_after_minutes: float = Field(10.0, ge=0)  # an unanswered delivery is resent after this


# -- spark -----------------------------------------------------------------------
# The master URLs Conveyor can start a session on (Spark 4 has no Mesos): local[N], local[*],
# local[N,F], spark://host:port[,host:port], yarn, k8s://https://host:port.
_MASTER = re.compile(
    r"local(\[(\*|[1-9][0-9]*)(,[0-9]+)?\])?|spark://[^\s:/,]+:[0-9]+(,[^\s:/,]+:[0-9]+)*|yarn|k8s://\S+"
)
# Spark's size strings (JavaUtils.byteStringAs): a number with an optional unit k, m, g, t, p (b optional).
_SIZE = re.compile(r"[0-9]+\s*([kmgtp]b?|b)?", re.IGNORECASE)
SPARK_SIZE_KEYS = (
    "spark.driver.memory",
    "spark.executor.memory",
    "spark.driver.maxResultSize",
    "spark.driver.memoryOverhead",
    "spark.executor.memoryOverhead",
)
# Keys Conveyor sets itself when it starts a session (its JVM log goes to a file, not the terminal).
SPARK_RESERVED_KEYS = ("spark.master", "spark.driver.extraJavaOptions")


# Databricks' names: an environment variable of the cluster, and a secret as ``scope/key`` (a scope is
# letters, digits, ``-_.@``; a key letters, digits, ``-_.``; each at most 128 characters)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET_REF = re.compile(r"[A-Za-z0-9_.@-]{1,128}/[A-Za-z0-9_.-]{1,128}")
DATABRICKS_HOST_ENV = "DATABRICKS_HOST"  # the workspace URL, as the Databricks CLI and SDK read it
# what the job cluster needs and has no default, with an example of each
DATABRICKS_REQUIRED = {
    "spark_version": "15.4.x-scala2.12",
    "node_type_id": "i3.xlarge",
    "project_dir": "/Workspace/Repos/team/shop",
}


class DatabricksSection(_Section):
    """``spark.databricks``: the job cluster of ``conveyor spark databricks-job`` / ``databricks-run``
    (Jobs API 2.1), the variable holding the token, and the secrets the cluster's training reads."""

    spark_version: str | None = Field(
        None, description="Databricks Runtime of the job cluster, e.g. 15.4.x-scala2.12"
    )
    node_type_id: str | None = Field(
        None, description="instance type of the driver and workers, e.g. i3.xlarge"
    )
    num_workers: int = Field(2, ge=0, description="workers of the job cluster (0: the driver alone)")
    project_dir: str | None = Field(
        None,
        description="where the cluster finds the project, e.g. its Git folder /Workspace/Repos/team/shop",
    )
    upload: bool = Field(
        False,
        description="upload the files Git tracks to <project_dir>/code-<digest> before each "
        "databricks-run and run there (false: the run trains whatever project_dir holds)",
    )
    token_env: str = Field(
        "DATABRICKS_TOKEN",
        description="environment variable holding the Databricks token (the token itself never here)",
    )
    secrets: dict[str, str] = Field(
        default_factory=dict,
        description="environment variables of the job cluster from Databricks secrets, "
        "e.g. MLFLOW_TRACKING_TOKEN: shop/mlflow-token (scope/key; never the value)",
    )

    @field_validator("token_env")
    @classmethod
    def _variable_name(cls, value: str) -> str:
        if not _ENV_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not an environment variable name (e.g. DATABRICKS_TOKEN)")
        return value

    @field_validator("secrets")
    @classmethod
    def _secret_references(cls, secrets: dict[str, str]) -> dict[str, str]:
        for name, ref in secrets.items():
            if not _ENV_NAME.fullmatch(name):
                raise _NotBuilt(name, "not an environment variable name (e.g. MLFLOW_TRACKING_TOKEN)")
            if not _SECRET_REF.fullmatch(ref):
                raise _NotBuilt(
                    name,
                    "not a Databricks secret as scope/key (e.g. shop/mlflow-token): the value is read "
                    "on the cluster from the secret scope, never written here",
                )
        return secrets

    @model_validator(mode="after")
    def _upload_into_the_workspace(self) -> DatabricksSection:
        if self.upload and self.project_dir is not None and not self.project_dir.startswith("/Workspace/"):
            raise _NotBuilt(
                "upload",
                f"uploads into a workspace folder; project_dir {self.project_dir!r} is not under "
                "/Workspace/ (e.g. /Workspace/Shared/shop)",
            )
        return self

    def missing(self) -> list[str]:
        """The keys the job cluster needs that are not set."""
        return [key for key in DATABRICKS_REQUIRED if getattr(self, key) is None]


class SparkSection(_Section):
    """``spark``: the session ``model.engine: spark`` and the Spark data checks run on."""

    master: str = Field(
        "local[2]", description="local[N], local[*], spark://host:port, yarn or k8s://https://host:port"
    )
    app_name: str = "conveyor"
    conf: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Spark properties, e.g. spark.driver.memory: 2g"
    )
    databricks: DatabricksSection = Field(default_factory=DatabricksSection)

    @field_validator("master")
    @classmethod
    def _master_url(cls, value: str) -> str:
        if not _MASTER.fullmatch(value.strip()):
            raise ValueError(
                f"{value!r} is not a Spark master URL Conveyor can use: local[N], local[*], "
                "spark://host:port, yarn or k8s://https://host:port"
            )
        return value.strip()

    @field_validator("conf")
    @classmethod
    def _known_forms(cls, conf: dict[str, Any]) -> dict[str, Any]:
        for key, value in conf.items():
            if key in SPARK_RESERVED_KEYS:
                where = "set spark.master instead" if key == "spark.master" else "Conveyor sets it"
                raise _NotBuilt(key, f"not accepted in spark.conf ({where})")
            if key in SPARK_SIZE_KEYS and not _SIZE.fullmatch(str(value).strip()):
                raise _NotBuilt(key, f"{value!r} is not a size Spark accepts (e.g. 512m, 2g)")
        return conf


# -- workflows -------------------------------------------------------------------
class WorkflowTraining(StrEnum):
    """``workflows.training``: where the generated workflows' training step runs."""

    RUNNER = "runner"  # `conveyor train` on the runner (model.engine decides where the fit runs)
    SPARK_SUBMIT = (
        "spark-submit"  # `conveyor spark submit`: spark-submit to spark.master (model.engine spark)
    )
    DATABRICKS = "databricks"  # `conveyor spark databricks-run`: a one-time run on a Databricks job cluster


class WorkflowsSection(_Section):
    python_versions: list[str] = Field(default_factory=lambda: ["3.11", "3.12"])
    model_types: list[ModelType] = Field(default_factory=list)  # empty: model.type only
    retrain_cron: str = "0 3 * * 1"
    monitor_cron: str = "0 */6 * * *"
    ci_cron: str = "0 4 * * *"
    paths: list[str] = Field(
        default_factory=lambda: ["data/**", "src/**", "conveyor.yaml", "requirements.lock"]
    )
    runs_on: str = "ubuntu-latest"
    branch: str = "main"
    # how the generated requirements.lock installs Conveyor (pip requirement of conveyor-ml);
    # unset: the way this Conveyor is installed (see conveyor.pipeline._requirements)
    conveyor_requirement: str | None = None
    training: WorkflowTraining = WorkflowTraining.RUNNER

    @field_validator("conveyor_requirement")
    @classmethod
    def _requirement_of_conveyor(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from packaging.requirements import InvalidRequirement, Requirement
        from packaging.utils import canonicalize_name

        try:
            req = Requirement(value)
        except InvalidRequirement as exc:
            raise ValueError(f"not a pip requirement: {exc}") from None
        if canonicalize_name(req.name) != "conveyor-ml":
            raise ValueError(f"must install conveyor-ml (got {req.name!r})")
        return value


# -- the whole file ---------------------------------------------------------------
class Settings(_Section):
    """The typed content of one ``conveyor.yaml``."""

    version: Literal[1] = 1
    project: ProjectSection = Field(default_factory=ProjectSection)
    data: DataSection = Field(default_factory=DataSection)
    model: ModelSection = Field(default_factory=ModelSection)
    evaluation: EvaluationSection = Field(default_factory=EvaluationSection)
    gates: GatesSection = Field(default_factory=GatesSection)
    registry: RegistrySection = Field(default_factory=RegistrySection)
    state: StateSection = Field(default_factory=StateSection)
    serving: ServingSection = Field(default_factory=ServingSection)
    deploy: DeploySection = Field(default_factory=DeploySection)
    monitoring: MonitoringSection = Field(default_factory=MonitoringSection)
    alerts: AlertsSection = Field(default_factory=AlertsSection)
    spark: SparkSection = Field(default_factory=SparkSection)
    workflows: WorkflowsSection = Field(default_factory=WorkflowsSection)

    @model_validator(mode="before")
    @classmethod
    def _derive_ports(cls, data: Any) -> Any:
        """Give each local environment without a port one derived from the project's id."""
        if not isinstance(data, dict):
            return data
        raw_project = data.get("project")
        project: dict[str, Any] = raw_project if isinstance(raw_project, dict) else {}
        identity = project.get("id") or project.get("name") or ProjectSection().name
        deploy = data.get("deploy")
        if deploy is not None and not isinstance(deploy, dict):
            return data
        deploy = dict(deploy or {})
        envs = deploy.get("environments")
        if envs is None:
            envs = {name: {} for name in DEFAULT_ENVIRONMENTS}
        if not isinstance(envs, dict):
            return data
        filled: dict[Any, Any] = {}
        for index, (name, env) in enumerate(envs.items()):
            remote = "replicas" in env or "replicas_env" in env if isinstance(env, dict) else False
            if isinstance(env, dict) and env.get("port") is None and not remote:
                if index >= PORT_BLOCK_SIZE:
                    raise ValueError(
                        f"deploy.environments.{name}.port: set it (ports are derived for the first "
                        f"{PORT_BLOCK_SIZE} environments only)"
                    )
                filled[name] = {**env, "port": derived_port(str(identity), index)}
            else:
                filled[name] = env
        deploy["environments"] = filled
        return {**data, "deploy": deploy}

    @model_validator(mode="after")
    def _model_fits_template(self) -> Settings:
        recommender = self.project.template is Template.RECOMMENDER
        kinds = [self.model.type, *(m.type for m in self.model.matrix)]
        for i, kind in enumerate(kinds):
            if kind.is_recommender != recommender:
                key = "model.type" if i == 0 else f"model.matrix.{i - 1}.type"
                raise ValueError(
                    f"{key}: '{kind.value}' does not fit template '{self.project.template.value}'"
                )
        if self.model.engine is Engine.SPARK:
            for i, kind in enumerate(kinds):
                refusal = spark_refusal(kind)
                if refusal is not None:
                    key = "model.type" if i == 0 else f"model.matrix.{i - 1}.type"
                    raise ValueError(f"{key}: {refusal}")
            for i, kind in enumerate(self.workflows.model_types):  # the workflows' matrix trains them
                refusal = spark_refusal(kind)
                if refusal is not None:
                    raise ValueError(f"workflows.model_types.{i}: {refusal}")
        if self.workflows.training is WorkflowTraining.SPARK_SUBMIT and self.model.engine is not Engine.SPARK:
            raise ValueError(
                "workflows.training: spark-submit runs the Spark training; set model.engine: spark "
                "(or workflows.training: runner)"
            )
        if self.workflows.training is WorkflowTraining.DATABRICKS:
            if self.model.engine is not Engine.SPARK:
                raise ValueError(
                    "workflows.training: databricks runs the Spark training; set model.engine: spark "
                    "(or workflows.training: runner)"
                )
            missing = self.spark.databricks.missing()
            if missing:
                key = missing[0]
                raise ValueError(
                    f"workflows.training: databricks runs the training on a Databricks job cluster; set "
                    f"spark.databricks.{key} (e.g. {key}: {DATABRICKS_REQUIRED[key]})"
                )
        local = [e for e in self.deploy.environments.values() if not e.remote]
        ports = [(e.host, e.port) for e in local]
        if len({p for _, p in ports}) != len(ports):
            raise ValueError("deploy.environments: two environments share one port")
        urls = [u for e in self.deploy.environments.values() for u in e.replicas or []]
        urls += [f"http://{e.host}:{e.port}" for e in local]
        shared = sorted({u for u in urls if urls.count(u) > 1})
        if shared:
            raise ValueError(f"deploy.environments: {shared[0]} belongs to two environments")
        return self


def defaults_for(template: Template) -> Settings:
    """Settings a fresh project of ``template`` starts from."""
    if template is Template.CLASSIFIER:
        return Settings.model_validate(
            {
                "project": {"template": "classifier"},
                "data": {"source": "data/raw/train.parquet", "target": "label"},
                "model": {"type": "random-forest", "primary_metric": "roc_auc"},
                "gates": {"no_regression": {"metric": "roc_auc"}},
            }
        )
    return Settings()


def _format_location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _first_error(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors()[0]
    key = _format_location(err["loc"])
    msg = err["msg"]
    refused = err.get("ctx", {}).get("error")
    if isinstance(refused, _NotBuilt):
        return ".".join(part for part in (key, refused.key) if part), refused.reason
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "value_error":
        msg = msg.removeprefix("Value error, ")
        # the model validator puts the key first: "model.type: ..."
        head, sep, rest = msg.partition(": ")
        if sep and not key:
            return head, rest
    elif "input" in err and err["type"] not in ("missing",):
        msg = f"{msg} (got {err['input']!r})"
    return key, msg


def parse_settings(raw: Any, *, file: str = CONFIG_FILENAME) -> Settings:
    """Validate already-parsed YAML content; raise ConfigError naming the key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(file, "", f"expected a mapping of sections, got {type(raw).__name__}")
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        key, msg = _first_error(exc)
        more = exc.error_count() - 1
        if more:
            msg += f" (and {more} more error{'s' if more > 1 else ''})"
        raise ConfigError(file, key, msg) from None


def load_settings(path: Path) -> Settings:
    """Read and validate one ``conveyor.yaml``."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(file, "", "file not found") from None
    except IsADirectoryError:
        raise ConfigError(file, "", "is a directory, expected a YAML file") from None
    except UnicodeDecodeError:
        raise ConfigError(file, "", "not valid UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(file, "", f"cannot read: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(file, "", f"invalid YAML: {where}{problem}") from None
    return parse_settings(raw, file=file)


def dump_settings(settings: Settings) -> str:
    """YAML text of ``settings`` (for `conveyor init` and `conveyor config show`)."""
    data = settings.model_dump(mode="json", by_alias=True, exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False)


def json_schema() -> dict[str, Any]:
    """JSON Schema of ``conveyor.yaml``, for editor completion."""
    schema = Settings.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "conveyor.yaml"
    return schema


def secret_from_env(var: str, *, purpose: str) -> str:
    """The value of environment variable ``var``; the error never shows a value."""
    value = os.environ.get(var)
    if not value:
        raise UsageError(f"environment variable {var} ({purpose}) is not set", variable=var)
    return value


def env_flag(var: str) -> str | None:
    """The raw value of a non-secret environment variable, or None."""
    return os.environ.get(var)


def s3_endpoint_url() -> str | None:
    """The S3 endpoint of a store other than AWS (MinIO, Ceph, moto): ``AWS_ENDPOINT_URL_S3``, else
    ``AWS_ENDPOINT_URL`` (the variables boto3 and the AWS CLI read); None: AWS itself. The keys stay
    in the environment, where each S3 client reads them: Conveyor never holds them."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


__all__ = [
    "CONFIG_FILENAME",
    "DATABRICKS_HOST_ENV",
    "DATABRICKS_REQUIRED",
    "DEPLOY_STRATEGIES",
    "DIRECT_STRATEGY",
    "NOT_BUILT_STRATEGIES",
    "STATE_DIRNAME",
    "DriftMethod",
    "Engine",
    "InsufficientEvidence",
    "ModelType",
    "RetrainAction",
    "Settings",
    "SparkSection",
    "SplitMethod",
    "Strategy",
    "Template",
    "WorkflowTraining",
    "defaults_for",
    "derived_port",
    "dump_settings",
    "json_schema",
    "load_settings",
    "parse_settings",
    "replica_base_url",
    "s3_endpoint_url",
    "secret_from_env",
    "spark_model_types",
    "spark_refusal",
]
