"""Lineage of a model version: where its data, code and parameters came from.

Stored as tags on the MLflow run and on the registered version (``conveyor.*``),
so that MLflow's UI shows them and :func:`Lineage.from_tags` reads them back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

PREFIX = "conveyor."


@dataclass(frozen=True)
class Lineage:
    """Everything needed to know how a model was made (and to make it again)."""

    run_id: str = ""
    model_type: str = ""
    data_path: str = ""
    data_fingerprint: str = ""  # "md5:<hex>" (the DVC hash when DVC-tracked) of the data file
    dvc_tracked: bool = False
    git_commit: str = ""  # the project's commit ("" outside git); "+dirty" when uncommitted changes
    conveyor_version: str = ""
    config_hash: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    sha256: str = ""

    def to_tags(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in asdict(self).items():
            if isinstance(value, dict):
                text = json.dumps(value, sort_keys=True, default=str)
            elif isinstance(value, bool):
                text = "true" if value else "false"
            else:
                text = str(value)
            out[PREFIX + key] = text
        return out

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> Lineage:
        raw: dict[str, Any] = {}
        for f in fields(cls):
            text = tags.get(PREFIX + f.name)
            if text is None:
                continue
            if f.name == "params":
                try:
                    raw[f.name] = json.loads(text)
                except ValueError:
                    raw[f.name] = {}
            elif f.name == "dvc_tracked":
                raw[f.name] = text == "true"
            else:
                raw[f.name] = text
        return cls(**raw)
