"""A Conveyor project: the folder holding ``conveyor.yaml`` and its local state.

The state folder (``.conveyor/`` by default) holds the embedded defaults,
created on first use: the MLflow tracking store on SQLite with local
artifacts, the reference profile, the deployment ledger, pid and log files of
the servers, request logs and monitoring state.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

from conveyor.config import CONFIG_FILENAME, Settings, load_settings
from conveyor.errors import ProjectNotFoundError

REMOTE_TRACKING_SCHEMES = frozenset({"http", "https"})


def find_project_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` holding ``conveyor.yaml``."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILENAME).is_file():
            return folder
    raise ProjectNotFoundError(
        f"no {CONFIG_FILENAME} in {start} or any parent; run `conveyor init DIR` or pass --project DIR"
    )


@dataclass(frozen=True)
class Project:
    """A project root and its validated settings. Paths resolve against ``root``."""

    root: Path
    settings: Settings

    @classmethod
    def load(cls, project_dir: Path | None = None) -> Project:
        """Find and load the project from ``project_dir`` (default: the working directory)."""
        if project_dir is not None:
            project_dir = Path(project_dir)
            if not (project_dir / CONFIG_FILENAME).is_file():
                raise ProjectNotFoundError(f"--project {project_dir}: no {CONFIG_FILENAME} there")
            root = project_dir.resolve()
        else:
            root = find_project_root(Path.cwd())
        return cls(root=root, settings=load_settings(root / CONFIG_FILENAME))

    @property
    def config_file(self) -> Path:
        return self.root / CONFIG_FILENAME

    def path(self, relative: str | Path) -> Path:
        """``relative`` resolved against the project root (absolute paths stay)."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else self.root / p

    @cached_property
    def state_dir(self) -> Path:
        """The local state folder, created on first use."""
        state = self.path(self.settings.project.state_dir)
        state.mkdir(parents=True, exist_ok=True)
        gitignore = state / ".gitignore"
        if not gitignore.exists():
            gitignore.write_text("*\n")
        return state

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI: the configured one, or SQLite under the state folder."""
        configured = self.settings.registry.tracking_uri
        if configured:
            return configured
        return f"sqlite:///{self.state_dir / 'mlflow.db'}"

    @property
    def tracking_uri_shown(self) -> str:
        """The tracking URI as messages show it: a password in it (``https://user:pw@host``) masked."""
        return self.redact(self.tracking_uri)

    def redact(self, text: str) -> str:
        """``text`` with the tracking URI's password, if it has one, masked as ``***``."""
        password = urlsplit(self.tracking_uri).password
        return text.replace(password, "***") if password else text

    @property
    def tracking_is_remote(self) -> bool:
        """True when the tracking URI names an MLflow server (``http(s)://…``), not a local store."""
        return self.tracking_uri.split("://", 1)[0].lower() in REMOTE_TRACKING_SCHEMES

    @property
    def artifact_location(self) -> str | None:
        """Where new experiments keep their artifacts: the configured location; with an MLflow
        server, None — the server's own artifact store (``--artifacts-destination``, proxied),
        never this machine; else ``mlartifacts/`` under the state folder."""
        configured = self.settings.registry.artifact_location
        if configured:
            return configured
        if self.tracking_is_remote:
            return None
        return (self.state_dir / "mlartifacts").as_uri()

    @property
    def experiment_name(self) -> str:
        return self.settings.registry.experiment or self.settings.project.name

    @property
    def model_name(self) -> str:
        return self.settings.registry.model_name or self.settings.project.name

    @property
    def reference_profile_path(self) -> Path:
        configured = self.settings.data.reference_profile
        return self.path(configured) if configured else self.state_dir / "reference-profile.json"

    @property
    def live_reference_profile_path(self) -> Path:
        """Recommender: the profile of the training events the server also receives as feedback."""
        return self.reference_profile_path.with_name(self.reference_profile_path.stem + "-live.json")

    @property
    def schema_path(self) -> Path:
        return self.path(self.settings.data.schema_file)

    @property
    def data_source(self) -> Path:
        return self.path(self.settings.data.source)
