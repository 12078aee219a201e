"""The training data of a run as an MLflow dataset input (``mlflow.log_input``).

MLflow has no DVC dataset source, so :class:`DvcDatasetSource` is a small one
of ours (MLflow's ``DatasetSource`` interface): the data file's path relative
to the project, the ``.dvc`` file that tracks it and the git revision — what
``dvc get . <path> --rev <rev>`` needs to fetch the very bytes again. The
dataset itself is MLflow's own ``PolarsDataset`` (``mlflow.data.from_polars``:
schema and row count), with the data file's MD5 as its digest — the hash DVC
records, so MLflow's digest and DVC's agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl
    from mlflow.data.dataset import Dataset


@dataclass(frozen=True)
class DatasetRef:
    """Where the training data lives: project-relative path, DVC file, git revision, MD5."""

    path: str
    md5: str
    dvc_file: str = ""  # "" when the file is not DVC-tracked
    rev: str = ""  # the project's git commit ("" outside git)

    @property
    def uri(self) -> str:
        return f"dvc://{self.path}@{self.rev}" if self.dvc_file else self.path


def _source_class(source_type: str) -> type[Any]:
    from mlflow.data.dataset_source import DatasetSource

    class DvcDatasetSource(DatasetSource):
        """A file of the project's repository, versioned by DVC at a git revision."""

        def __init__(self, ref: DatasetRef) -> None:
            self.ref = ref

        @staticmethod
        def _get_source_type() -> str:
            return source_type

        def load(self) -> Any:
            return self.ref.path  # fetched with `dvc get . <path> --rev <rev>` in the project

        @staticmethod
        def _can_resolve(raw_source: Any) -> bool:
            return False  # built explicitly, never resolved from a bare string

        @classmethod
        def _resolve(cls, raw_source: Any) -> Any:
            raise NotImplementedError

        def to_dict(self) -> dict[str, Any]:
            return {"uri": self.ref.uri, "path": self.ref.path, "dvc_file": self.ref.dvc_file,
                    "rev": self.ref.rev, "md5": self.ref.md5}  # fmt: skip

        @classmethod
        def from_dict(cls, source_dict: dict[Any, Any]) -> Any:
            keys = ("path", "md5", "dvc_file", "rev")
            return cls(DatasetRef(**{k: str(source_dict.get(k, "")) for k in keys}))

    return DvcDatasetSource


def training_dataset(frame: pl.DataFrame, ref: DatasetRef, *, name: str, target: str | None) -> Dataset:
    """MLflow's dataset of ``frame`` (the rows the model was fitted on) with ``ref`` as its source."""
    from mlflow.data.polars_dataset import from_polars

    # "dvc": DVC-tracked; "project": a file of the project that DVC does not track
    source = _source_class("dvc" if ref.dvc_file else "project")(ref)
    targets = target if target in frame.columns else None
    # the digest column of MLflow's store holds 36 characters; an MD5 is 32
    dataset: Dataset = from_polars(frame, source=source, name=name, digest=ref.md5[:36], targets=targets)
    return dataset
