"""``conveyor init``: a ready project from a template.

Writes ``conveyor.yaml``, the data (the template's generated sample or the
user's own file) under ``data/raw`` with its inferred schema, ``data/raw``
and ``data/processed`` tracked by DVC with a local remote, the template's
``src/`` and ``tests/``, a pinned ``requirements.lock``, a README and the
workflows.

Git and DVC: a project is meant to live in a git repository (GitHub runs
its workflows). When DIR is not inside a git work tree and ``git`` is
installed, ``git init`` makes it one on ``workflows.branch`` (``main``, the
branch the workflows trigger on; nothing is committed); when DIR is a
sub-folder of an existing repository, DVC is initialised with ``--subdir``;
without ``git``, with ``--no-scm``. The local DVC remote is ``.dvc-remote``
inside the project, written as a path relative to ``.dvc/`` so a clone
works anywhere: committing it lets the workflows ``dvc pull`` the sample
data with no credentials. A team's data goes to S3: ``init --remote s3://bucket/prefix``
(``data.remote``) runs the equivalent of ``dvc remote add -d storage s3://…`` and ``dvc remote
modify storage endpointurl …`` (the endpoint from ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``,
when set), then pushes there; the keys stay in the environment.

Your own data (``--data FILE``): the recommender's columns are mapped with
``--user/--item/--timestamp/--event/--weight`` and timestamps converted as
:mod:`._user_data` describes. Everything that can be checked is checked before
the first file is written; a failure after that removes what this run created
(the whole folder when it did not exist before), so a failed init leaves
nothing behind.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from string import Template as TextTemplate
from typing import Any

from conveyor import __version__
from conveyor.config import CONFIG_FILENAME, Template, defaults_for, dump_settings, parse_settings
from conveyor.errors import InputError, NotBuiltYetError, OperationError, UsageError
from conveyor.extensions import require_extra
from conveyor.pipeline._data_remote import DVC_REMOTE_DIR, quiet_dvc, set_dvc_remote
from conveyor.pipeline._requirements import requirements_lock
from conveyor.pipeline._user_data import ColumnMapping, PreparedData, prepare_interactions
from conveyor.pipeline._workflow_steps import REQUIREMENTS_FILE
from conveyor.pipeline._workflows import write_workflows
from conveyor.project import Project
from conveyor.stage_graph import PIPELINE

SAMPLE_DAYS = 28
SAMPLE_USERS = 400
SAMPLE_ITEMS = 200
SAMPLE_ROWS = 2000
SAMPLE_SEED = 7
_DATA_SUFFIXES = (".csv", ".parquet", ".pq")


@dataclass(frozen=True)
class InitResult:
    """What ``init`` wrote."""

    root: Path
    template: Template
    data: str
    rows: int
    scm: str  # "git" | "git-subdir" | "none"
    files: tuple[str, ...]
    columns: dict[str, str | None] | None = None  # recommender: data.columns written
    timestamps: str | None = None  # recommender: the form the timestamps were in
    conveyor_requirement: str = ""  # how requirements.lock installs Conveyor
    dvc_remote: str = DVC_REMOTE_DIR  # the local folder, or data.remote in S3
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": str(self.root),
            "template": self.template.value,
            "data": self.data,
            "rows": self.rows,
            "scm": self.scm,
            "dvc_remote": self.dvc_remote,
            "files": list(self.files),
            "columns": self.columns,
            "timestamps": self.timestamps,
            "conveyor_requirement": self.conveyor_requirement,
            "warnings": list(self.warnings),
        }


# -- data ---------------------------------------------------------------------------------
def _sample(template: Template) -> Any:
    try:
        if template is Template.CLASSIFIER:
            from conveyor.data import generate_classification  # type: ignore[attr-defined,unused-ignore]

            return generate_classification(SAMPLE_ROWS, seed=SAMPLE_SEED)
        from conveyor.data import ShopConfig, ShopWorld  # type: ignore[attr-defined,unused-ignore]
    except ImportError as exc:
        raise NotBuiltYetError(
            f"conveyor init --template {template.value}: the sample data generator is not built yet "
            f"({exc}); pass --data FILE"
        ) from exc
    world = ShopWorld.create(ShopConfig(n_users=SAMPLE_USERS, n_items=SAMPLE_ITEMS, seed=SAMPLE_SEED))
    start = datetime.now(UTC).date() - timedelta(days=SAMPLE_DAYS)
    return world.simulate(date(start.year, start.month, start.day), SAMPLE_DAYS)


def _read_user_data(path: Path, template: Template, target: str | None) -> Any:
    from conveyor.data import read_table

    if path.suffix.lower() not in _DATA_SUFFIXES:
        raise InputError(f"--data {path}: expected a .csv or .parquet file", path=str(path))
    frame = read_table(path)
    if template is Template.CLASSIFIER and target not in frame.columns:
        raise InputError(
            f"--data {path}: no target column {target!r} "
            f"(pass --target COL; columns: {', '.join(frame.columns)})",
            path=str(path),
        )
    return frame


# -- settings and files -----------------------------------------------------------------
def _project_name(root: Path) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", root.name.lower()).strip("-")
    return name or "conveyor-project"


def _settings_text(
    root: Path,
    template: Template,
    source: str,
    frame: Any,
    target: str | None,
    prepared: PreparedData | None,
    remote: str | None = None,
) -> str:
    raw = defaults_for(template).model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["project"]["name"] = _project_name(root)
    # written once: the servers answer /version with it and default ports are derived from it,
    # so two projects of one name on one machine neither collide nor accept each other's servers
    raw["project"]["id"] = f"{raw['project']['name']}-{secrets.token_hex(3)}"
    raw["deploy"].pop("environments", None)  # ports derived from the id, not from the defaults' id
    raw["data"]["source"] = source
    if remote is not None:
        raw["data"]["remote"] = remote
    if template is Template.CLASSIFIER:
        raw["data"]["target"] = target
    elif prepared is not None:
        raw["data"]["columns"] = dict(prepared.columns)
        if prepared.event_weights is not None:
            raw["data"]["event_weights"] = prepared.event_weights
    else:
        columns = raw["data"].setdefault("columns", {})
        if "event" not in frame.columns:
            columns["event"] = None
        if "weight" in frame.columns:
            columns["weight"] = "weight"
    settings = parse_settings(raw, file=str(root / CONFIG_FILENAME))
    return dump_settings(settings)


def _template_text(*parts: str) -> str:
    return resources.files("conveyor").joinpath("templates", *parts).read_text(encoding="utf-8")


def _template_files(template: Template) -> list[tuple[str, str]]:
    """(relative path, text) of the template's own files (tests, src)."""
    base = resources.files("conveyor").joinpath("templates", template.value)
    out: list[tuple[str, str]] = []

    def walk(node: Any, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.name == "__pycache__":
                continue
            rel = f"{prefix}{child.name.removesuffix('.tmpl')}"  # .tmpl: not linted as our code
            if child.is_dir():
                walk(child, rel + "/")
            else:
                out.append((rel, child.read_text(encoding="utf-8")))

    walk(base, "")
    return out


def _readme(root: Path, template: Template, source: str, target: str | None) -> str:
    rows = "\n".join(f"| `{s.name}` | `{s.command_line}` | {s.job} | {s.description} |" for s in PIPELINE)
    return TextTemplate(_template_text("README.md.tmpl")).substitute(
        name=_project_name(root),
        template=template.value,
        source=source,
        target=target or "-",
        stages=rows,
        version=__version__,
    )


# -- git and DVC -------------------------------------------------------------------------------
def _git_state(root: Path, branch: str) -> str:
    """``git`` / ``git-subdir`` / ``none``; a new repository starts on ``branch``
    (``workflows.branch``, the one the workflows trigger on), whatever git's default is."""
    git = shutil.which("git")
    if git is None:
        return "none"
    proc = subprocess.run(
        [git, "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True, check=False
    )
    if proc.returncode == 0:
        return "git" if Path(proc.stdout.strip()).resolve() == root.resolve() else "git-subdir"
    init = subprocess.run(
        [git, "init", "--quiet", f"--initial-branch={branch}", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    if init.returncode != 0:
        raise OperationError(f"git init {root} failed: {init.stderr.strip()}")
    return "git"


def _dvc_track(root: Path, scm: str, remote: str | None = None) -> None:
    """``dvc init`` (once), the remote (local folder or S3), ``dvc add`` the data folders, ``dvc push``."""
    with quiet_dvc(root) as Repo:
        if (root / ".dvc").is_dir():
            repo = Repo(str(root))
        else:
            repo = Repo.init(str(root), no_scm=scm == "none", subdir=scm == "git-subdir")
        try:
            set_dvc_remote(repo, root, remote)
            repo.add([str(root / "data" / "raw"), str(root / "data" / "processed")])
            repo.push()
        finally:
            repo.close()


# -- init -----------------------------------------------------------------------------------------
def init_project(
    directory: Path,
    template: Template,
    *,
    data: Path | None = None,
    target: str | None = None,
    force: bool = False,
    columns: ColumnMapping | None = None,
    remote: str | None = None,
) -> InitResult:
    """Write a ready project into ``directory``; refuse an existing one unless ``force``.

    ``columns`` maps the recommender's columns onto those of ``data``. On any failure
    after writing began, what this call created is removed before the error propagates.
    """
    root = directory.expanduser().resolve()
    require_extra("dvc", "dvc", "conveyor init (it versions data/raw and data/processed with DVC)")
    if root.exists() and not root.is_dir():
        raise UsageError(f"{directory}: exists and is not a folder")
    if (root / CONFIG_FILENAME).exists() and not force:
        raise UsageError(
            f"{directory}: a project is already there ({CONFIG_FILENAME}); pass --force to overwrite"
        )
    if template is Template.RECOMMENDER and target is not None:
        raise UsageError("--target is for the classifier template (the recommender has no target column)")
    columns = columns or ColumnMapping()
    if columns.given and template is not Template.RECOMMENDER:
        raise UsageError(
            f"{', '.join(columns.given)}: for the recommender template (the classifier uses --target)"
        )
    if columns.given and data is None:
        raise UsageError(f"{', '.join(columns.given)}: map the columns of your own file; pass --data FILE")
    target = (target or defaults_for(template).data.target) if template is Template.CLASSIFIER else None

    prepared: PreparedData | None = None
    if data is not None:
        frame = _read_user_data(data, template, target)
        name = data.name
        if template is Template.RECOMMENDER:
            weights = dict(defaults_for(template).data.event_weights)
            prepared = prepare_interactions(frame, columns, data, weights)
            frame = prepared.frame
            if prepared.converted:  # written once with datetimes, so every stage reads one type
                name = f"{data.stem}.parquet"
    else:
        frame = _sample(template)
        name = "interactions.parquet" if template is Template.RECOMMENDER else "train.parquet"
    source = f"data/raw/{name}"
    timestamp = None
    if template is Template.RECOMMENDER:
        timestamp = prepared.columns["timestamp"] if prepared is not None else "timestamp"
    from conveyor.data import infer_schema

    schema = infer_schema(frame, timestamp=timestamp)
    settings_text = _settings_text(root, template, source, frame, target, prepared, remote)
    lock_text, pin = requirements_lock()  # a new conveyor.yaml: no workflows.conveyor_requirement yet

    with _undo_on_failure(root):
        raw = root / "data" / "raw"
        for folder in (raw, root / "data" / "processed", root / "tests"):
            folder.mkdir(parents=True, exist_ok=True)
        if data is not None and (prepared is None or not prepared.converted):
            shutil.copyfile(data, raw / name)
        else:
            frame.write_parquet(raw / name)
        schema.save(root / "schema.yaml")
        written = [source, "schema.yaml"]
        texts = {
            CONFIG_FILENAME: settings_text,
            REQUIREMENTS_FILE: lock_text,
            "README.md": _readme(root, template, source, target),
            ".gitignore": ".conveyor/\n__pycache__/\n.venv/\n*.egg-info/\n",
            "data/processed/.gitkeep": "",
            **dict(_template_files(template)),
        }
        for rel, text in texts.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(rel)
        project = Project.load(root)
        written += [str(p.relative_to(root)) for p in write_workflows(project)]
        scm = _git_state(root, project.settings.workflows.branch)
        _dvc_track(root, scm, project.settings.data.remote)
        written += ["data/raw.dvc", "data/processed.dvc", ".dvc/config"]
    return InitResult(
        root,
        template,
        source,
        int(frame.height),
        scm,
        tuple(written),
        columns=dict(prepared.columns) if prepared is not None else None,
        timestamps=prepared.timestamp_format if prepared is not None else None,
        conveyor_requirement=pin.requirement,
        dvc_remote=remote or DVC_REMOTE_DIR,
        warnings=(pin.warning,) if pin.warning else (),
    )


@contextlib.contextmanager
def _undo_on_failure(root: Path) -> Iterator[None]:
    """Remove what the block created if it fails: the folder itself when it was new, else the
    entries that were not there before (a file overwritten under ``--force`` stays overwritten)."""
    existed = root.exists()
    before = {p.name for p in root.iterdir()} if existed else set()
    try:
        yield
    except BaseException:
        if not existed:
            shutil.rmtree(root, ignore_errors=True)
        elif root.is_dir():
            for entry in root.iterdir():
                if entry.name in before:
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
        raise
