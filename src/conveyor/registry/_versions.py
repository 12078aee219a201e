"""Registered model versions and their aliases (MLflow's registry behind a small interface).

A version is the pyfunc flavour of a Conveyor model (see :mod:`._pyfunc`),
tagged with its lineage and the sha256 of the model files. Aliases
(``candidate``, ``staging``, ``production``, ``previous``) point at versions;
registry stages are deprecated in MLflow and not used. Loading goes through
:func:`load_verified`, which recomputes the sha256 first.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from conveyor import __version__
from conveyor.errors import ConveyorError, InputError, IntegrityError, ServiceError, UsageError
from conveyor.models import Model, load_model
from conveyor.project import Project
from conveyor.registry._checksum import directory_sha256, verify_sha256
from conveyor.registry._lineage import PREFIX, Lineage
from conveyor.registry._tracking import (
    ensure_experiment,
    failure_text,
    registry_failure,
    tracking_client,
)

CANDIDATE = "candidate"
PYFUNC_NAME = "registered-model"
SHA_TAG = PREFIX + "sha256"
MODEL_ARTIFACT = "model"  # the Conveyor model files among the pyfunc artifacts (as in _pyfunc)


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: where its files are locally and how it was made."""

    name: str
    version: str
    run_id: str
    source_dir: Path  # a local directory holding the Conveyor model files
    sha256: str
    aliases: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    artifact_uri: str = ""  # a server's store: fetched into source_dir's cache on first load

    @property
    def lineage(self) -> Lineage:
        return Lineage.from_tags(self.tags)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "source_dir": str(self.source_dir),
            "sha256": self.sha256,
            "aliases": list(self.aliases),
            "tags": dict(self.tags),
        }


def _service_error(project: Project, action: str, exc: Exception) -> ServiceError:
    return ServiceError(
        f"model registry {project.tracking_uri_shown!r}: {action} failed: {registry_failure(project, exc)}",
        tracking_uri=project.tracking_uri_shown,
    )


def _local_model_dir(project: Project, mv: Any) -> tuple[Path, str]:
    """Where the Conveyor model files of a version are (or will be, once fetched) on this machine,
    and the remote location to fetch them from ("" for a local store)."""
    from urllib.parse import unquote, urlparse

    import mlflow

    client = tracking_client(project)
    source = str(mv.source)
    if source.startswith("models:/") and getattr(mv, "model_id", None):
        location = str(client.get_logged_model(mv.model_id).artifact_location)
    else:
        location = str(client.get_model_version_download_uri(mv.name, mv.version))
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        root = Path(unquote(parsed.path))
        return root / _model_artifact_path(root / "MLmodel"), ""
    # a server's store: only the small MLmodel now (listing versions must not fetch every
    # model); the files come with the first load (load_verified)
    root = project.state_dir / "registry-cache" / mv.name / str(mv.version)
    if (root / "MLmodel").is_file():
        return root / _model_artifact_path(root / "MLmodel"), location
    meta = root.parent / f"{root.name}.MLmodel"
    if not meta.is_file():
        _download(f"{location.rstrip('/')}/MLmodel", meta, mlflow.artifacts.download_artifacts)
    return root / _model_artifact_path(meta), location


def _fetch(version: ModelVersion) -> None:
    """The whole version from the server's store into its cache folder (``source_dir``'s root)."""
    import mlflow

    root = version.source_dir  # <state>/registry-cache/<name>/<version>/<artifact path>
    while root != root.parent and (root.name, root.parent.name) != (version.version, version.name):
        root = root.parent
    _download(version.artifact_uri, root, mlflow.artifacts.download_artifacts)


def _download(location: str, root: Path, download: Any) -> None:
    """The artifacts at ``location`` (a server's ``mlflow-artifacts:/…``, ``s3://…``) into ``root``.

    MLflow puts a folder's files under ``dst_path/<last path part>`` and returns that path:
    the files are fetched into a fresh folder beside ``root`` and moved into place whole, so
    an interrupted download never leaves a half cache that looks complete. The checksum is
    verified on every load (:func:`load_verified`), not trusted from the cache.
    """
    import shutil
    import tempfile

    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        try:
            fetched = Path(download(artifact_uri=location, dst_path=str(staging)))
        except Exception as exc:  # MLflow's and the artifact store's errors alike: one line
            raise ServiceError(
                f"model registry: fetching {location} failed: {failure_text(exc)}", path=location
            ) from exc
        if fetched.is_dir() and not (fetched / "MLmodel").is_file():
            raise InputError(f"{location}: no MLmodel in the downloaded artifacts", path=location)
        if fetched.is_dir() and (root / "MLmodel").is_file():
            return  # another process (a second server of this runner) fetched it meanwhile: keep
            # its copy — replacing it would pull the files from under a server loading them
        shutil.rmtree(root, ignore_errors=True)  # a stale folder without MLmodel
        os.replace(fetched, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _model_artifact_path(mlmodel: Path) -> str:
    """Where the pyfunc package keeps the Conveyor model files (read from its MLmodel file)."""
    import yaml

    try:
        meta = yaml.safe_load(mlmodel.read_text())
        return str(meta["flavors"]["python_function"]["artifacts"][MODEL_ARTIFACT]["path"])
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise InputError(
            f"{mlmodel.parent}: not a Conveyor pyfunc model ({exc})", path=str(mlmodel.parent)
        ) from exc


def _to_version(project: Project, mv: Any) -> ModelVersion:
    tags = dict(mv.tags or {})
    source_dir, remote = _local_model_dir(project, mv)
    return ModelVersion(
        name=str(mv.name),
        version=str(mv.version),
        run_id=str(mv.run_id or tags.get(PREFIX + "run_id", "")),
        source_dir=source_dir,
        artifact_uri=remote,
        sha256=tags.get(SHA_TAG, ""),
        aliases=tuple(sorted(getattr(mv, "aliases", []) or [])),
        tags=tags,
    )


def register_version(
    project: Project,
    run_id: str,
    model_dir: Path,
    *,
    lineage: Lineage,
    description: str = "",
    alias: str | None = CANDIDATE,
    input_example: Any = None,
    pip_requirements: tuple[str, ...] = (),
) -> ModelVersion:
    """Register the model files in ``model_dir`` (trained by ``run_id``) as a version: a new one, or
    the one an interrupted registration of the same run created (see :func:`_version_of_run`).

    ``input_example`` (a pandas frame of a few model inputs) is stored with the version,
    with the signature MLflow infers from it and the model's own answer to it.
    ``pip_requirements`` are what the pyfunc needs installed (default: ``conveyor-ml==<version>``;
    the pipeline passes the project's installable pin).
    """
    sha = directory_sha256(model_dir)
    lineage = replace(lineage, run_id=run_id, sha256=sha)
    ensure_experiment(project)
    client = tracking_client(project)
    name = project.model_name
    try:
        version = _version_of_run(client, name, run_id, sha)
        if version is None:
            version = _log_version(project, run_id, model_dir, sha, lineage, input_example, pip_requirements)
        # tags, description and alias are set whether the version is new or an earlier attempt
        # created it and stopped before them: each call sets the same values, so a retry finishes it
        for key, value in lineage.to_tags().items():
            client.set_model_version_tag(name, version, key, value)
        if description:
            client.update_model_version(name, version, description=description)
        if alias:
            client.set_registered_model_alias(name, alias, version)
    except ConveyorError:
        raise
    except Exception as exc:  # MLflow raises MlflowException and store errors alike
        raise _service_error(project, f"registering run {run_id}", exc) from exc
    return get_version(project, version)


def _version_of_run(client: Any, name: str, run_id: str, sha: str) -> str | None:
    """The version an earlier registration of ``run_id`` created, or None.

    MLflow creates the version inside ``log_model``; its tags, description and alias come in later
    calls. A registration that failed between the two (the server or its database gone) leaves a
    version without them, and registering the run again would add a second version of the same
    files. So a run's existing ready version is completed instead; one whose checksum tag names other
    files is refused (one training run has one model directory, checked against its evaluation).
    """
    found = client.search_model_versions(filter_string=f"name = '{name}' and run_id = '{run_id}'")
    ready = [mv for mv in found if str(getattr(mv, "status", "READY")) == "READY"]
    if not ready:
        return None
    mv = min(ready, key=lambda v: int(v.version))
    tagged = dict(mv.tags or {}).get(SHA_TAG)
    if tagged not in (None, sha):
        raise IntegrityError(
            f"run {run_id} is already registered as version {mv.version} with other model files "
            f"(sha256 {tagged[:12]}…, now {sha[:12]}…); train a new run instead",
            version=str(mv.version),
        )
    return str(mv.version)


def _log_version(
    project: Project,
    run_id: str,
    model_dir: Path,
    sha: str,
    lineage: Lineage,
    input_example: Any,
    pip_requirements: tuple[str, ...],
) -> str:
    """Log the pyfunc into ``run_id`` and register it: the new version's number."""
    import mlflow
    import mlflow.pyfunc

    from conveyor.registry import _pyfunc_code

    # redirect_stdout: a tracking server's run URL, printed when the run ends, goes to stderr
    with (
        contextlib.redirect_stdout(sys.stderr),
        mlflow.start_run(run_id=run_id),
        warnings.catch_warnings(),
    ):
        # the pyfunc takes free-form frames on purpose: no type-hint schema
        warnings.filterwarnings("ignore", message=".*type hint.*", category=UserWarning)
        signature = _signature(model_dir, input_example) if input_example is not None else None
        info = mlflow.pyfunc.log_model(
            name=PYFUNC_NAME,
            signature=signature,
            input_example=input_example,
            python_model=str(Path(_pyfunc_code.__file__)),
            artifacts={MODEL_ARTIFACT: str(model_dir)},
            model_config={"sha256": sha},
            pip_requirements=list(pip_requirements) or [f"conveyor-ml=={__version__}"],
            registered_model_name=project.model_name,
            tags=lineage.to_tags(),
        )
    return str(info.registered_model_version)


def _signature(model_dir: Path, example: Any) -> Any:
    """MLflow's signature of ``example`` and what the pyfunc answers to it (a recommender's
    ``k`` is a parameter of the signature, so ``predict(frame, params={"k": 5})`` keeps working)."""
    from mlflow.models import infer_signature

    from conveyor.models import Recommender
    from conveyor.registry._pyfunc import DEFAULT_K, ConveyorPyfunc

    with warnings.catch_warnings():  # MLflow's hints on integer columns and type hints
        warnings.simplefilter("ignore", UserWarning)
        wrapper = ConveyorPyfunc()
        wrapper.model = load_model(model_dir)
        params = {"k": DEFAULT_K} if isinstance(wrapper.model, Recommender) else None
        output = wrapper.predict(None, example, params)  # type: ignore[no-untyped-call]
        return infer_signature(example, output, params=params)


def get_version(project: Project, version: str | int) -> ModelVersion:
    """A registered version by number; UsageError when there is no such version."""
    client = tracking_client(project)
    try:
        return _to_version(project, client.get_model_version(project.model_name, str(version)))
    except ConveyorError:
        raise
    except Exception as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")):
            raise UsageError(
                f"model {project.model_name!r} has no version {version}", version=str(version)
            ) from exc
        raise _service_error(project, f"reading version {version}", exc) from exc


def get_version_by_alias(project: Project, alias: str) -> ModelVersion | None:
    """The version an alias points at, or None when the alias (or the model) does not exist."""
    client = tracking_client(project)
    try:
        return _to_version(project, client.get_model_version_by_alias(project.model_name, alias))
    except ConveyorError:
        raise
    except Exception as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) or "INVALID_PARAMETER" in str(
            getattr(exc, "error_code", "")
        ):
            return None
        raise _service_error(project, f"reading alias {alias!r}", exc) from exc


def list_versions(project: Project) -> list[ModelVersion]:
    """Every registered version of the project's model, newest first."""
    client = tracking_client(project)
    try:
        found = client.search_model_versions(filter_string=f"name = '{project.model_name}'")
        # a server's search leaves the versions' aliases out: the registered model has them all
        aliases: dict[str, list[str]] = {}
        if found:
            for alias, number in (client.get_registered_model(project.model_name).aliases or {}).items():
                aliases.setdefault(str(number), []).append(str(alias))
        versions = [
            replace(_to_version(project, mv), aliases=tuple(sorted(aliases.get(str(mv.version), []))))
            for mv in found
        ]
    except ConveyorError:
        raise
    except Exception as exc:
        raise _service_error(project, "listing versions", exc) from exc
    return sorted(versions, key=lambda v: -int(v.version))


def set_alias(project: Project, alias: str, version: str | int) -> None:
    """Point ``alias`` at ``version`` (moving it if it pointed elsewhere)."""
    client = tracking_client(project)
    try:
        client.set_registered_model_alias(project.model_name, alias, str(version))
    except Exception as exc:
        raise _service_error(project, f"setting alias {alias!r} → {version}", exc) from exc


def delete_alias(project: Project, alias: str) -> None:
    """Remove ``alias``; nothing happens when it does not exist."""
    if get_version_by_alias(project, alias) is None:
        return
    client = tracking_client(project)
    try:
        client.delete_registered_model_alias(project.model_name, alias)
    except Exception as exc:
        raise _service_error(project, f"deleting alias {alias!r}", exc) from exc


def load_verified(version: ModelVersion) -> Model:
    """Load a version's model after checking its files against the registered sha256 (a version in
    a server's store is fetched whole into the local cache first, then verified like any other)."""
    if not version.source_dir.is_dir() and version.artifact_uri:
        _fetch(version)
    if not version.source_dir.is_dir():
        raise InputError(
            f"model {version.name} v{version.version}: files not found at {version.source_dir}",
            path=str(version.source_dir),
        )
    verify_sha256(version.source_dir, version.sha256, what=f"model {version.name} v{version.version}")
    return load_model(version.source_dir)
