"""Tabular classifiers: scikit-learn random forest, XGBoost, LightGBM.

The three share the feature encoding (:mod:`._encoding`), the label coding
(classes sorted, coded 0..k-1) and the manifest; each stores its estimator
in the format its library is best at:

- XGBoost and LightGBM: their own portable model formats (UBJSON, text) —
  no code is executed when loading them.
- Random forest: scikit-learn has no native format. MLflow 3 saves it with
  skops, which refuses the tree type unless told to trust it; trusting a
  type list is no safer than trusting the file. We store it with joblib
  (pickle) deliberately: the registry checks the artifact's sha256 against
  the registered value before loading (``load_verified``), so only the bytes
  that were trained and gated are ever unpickled.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl

from conveyor.errors import InputError, UsageError
from conveyor.extensions import require_extra
from conveyor.models._base import Classifier
from conveyor.models._encoding import FeatureEncoding, FeatureSpec


class TabularClassifier(Classifier):
    """Common part: target, features, labels, manifest. Subclasses wrap one library."""

    backend: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        *,
        target: str,
        params: Mapping[str, Any] | None = None,
        seed: int = 42,
        exclude: tuple[str, ...] = (),
    ) -> None:
        self.target = target
        self.params = dict(params or {})
        self.seed = seed
        self.exclude = tuple(exclude)

    encoding_: FeatureEncoding
    classes_: list[Any]
    estimator_: Any

    def is_fitted(self) -> bool:
        return hasattr(self, "estimator_")

    def effective_params(self) -> dict[str, Any]:
        return {**self.defaults, **self.params}

    @property
    def feature_names(self) -> list[str]:
        self.check_fitted()
        return list(self.encoding_.names)

    @property
    def feature_types(self) -> dict[str, str]:
        self.check_fitted()
        return dict(self.encoding_.types)

    @property
    def feature_specs(self) -> dict[str, FeatureSpec]:
        self.check_fitted()
        return self.encoding_.specs()

    @property
    def classes(self) -> list[Any]:
        self.check_fitted()
        return list(self.classes_)

    def fit(self, data: pl.DataFrame) -> Self:
        if self.target not in data.columns:
            raise InputError(f"target column {self.target!r} is not in the data (has {data.columns})")
        data = data.filter(pl.col(self.target).is_not_null())
        labels = data[self.target]
        classes = labels.unique().sort().to_list()
        if len(classes) < 2:
            raise InputError(f"target column {self.target!r} needs at least two classes, found {classes}")
        features = data.drop([self.target, *[c for c in self.exclude if c in data.columns]])
        self.encoding_ = FeatureEncoding.learn(features)
        code = {c: j for j, c in enumerate(classes)}
        y = np.asarray([code[v] for v in labels.to_list()], dtype=np.int64)
        x = self.encoding_.transform(features)
        self.estimator_ = self._fit_estimator(x, y, len(classes))
        self.classes_ = classes
        return self

    def predict_proba(self, rows: pl.DataFrame) -> np.ndarray:
        self.check_fitted()
        x = self.encoding_.transform(rows)
        if x.shape[0] == 0:
            return np.empty((0, len(self.classes_)))
        proba = np.asarray(self._proba(x), dtype=np.float64)
        if proba.ndim == 1:  # binary boosters return P(class 1) only
            proba = np.column_stack([1.0 - proba, proba])
        return proba

    # -- per library -----------------------------------------------------------------
    def _fit_estimator(self, x: np.ndarray, y: np.ndarray, n_classes: int) -> Any:
        raise NotImplementedError

    def _proba(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.estimator_.predict_proba(x))

    def _save_estimator(self, directory: Path) -> str:
        raise NotImplementedError

    @classmethod
    def _load_estimator(cls, path: Path) -> Any:
        raise NotImplementedError

    def _bad_params(self, exc: Exception) -> UsageError:
        return UsageError(f"invalid {self.backend} parameter: {exc}", parameters=sorted(self.params))

    # -- persistence -----------------------------------------------------------------
    def _save_files(self, directory: Path) -> dict[str, Any]:
        filename = self._save_estimator(directory)
        return {
            "backend": self.backend,
            "estimator_file": filename,
            "target": self.target,
            "params": self.effective_params(),
            "seed": self.seed,
            "exclude": list(self.exclude),
            "classes": self.classes_,
            "features": self.encoding_.to_dict(),
        }

    @classmethod
    def _load_files(cls, directory: Path, manifest: dict[str, Any]) -> Self:
        model = cls(
            target=manifest["target"],
            params=manifest.get("params"),
            seed=int(manifest.get("seed", 42)),
            exclude=tuple(manifest.get("exclude", ())),
        )
        path = directory / manifest["estimator_file"]
        if not path.is_file():
            raise InputError(f"{path}: estimator file missing", path=str(path))
        model.encoding_ = FeatureEncoding.from_dict(manifest["features"])
        model.classes_ = list(manifest["classes"])
        model.estimator_ = cls._load_estimator(path)
        return model


class RandomForestModel(TabularClassifier):
    backend = "random-forest"
    defaults: ClassVar[dict[str, Any]] = {"n_estimators": 200, "n_jobs": -1}

    def _fit_estimator(self, x: np.ndarray, y: np.ndarray, n_classes: int) -> Any:
        from sklearn.ensemble import RandomForestClassifier

        try:
            estimator = RandomForestClassifier(random_state=self.seed, **self.effective_params())
            return estimator.fit(x, y)
        except (TypeError, ValueError) as exc:
            raise self._bad_params(exc) from exc

    def _save_estimator(self, directory: Path) -> str:
        import joblib

        joblib.dump(self.estimator_, directory / "estimator.joblib")
        return "estimator.joblib"

    @classmethod
    def _load_estimator(cls, path: Path) -> Any:
        import joblib

        # pickle: see the module docstring (the registry verifies the sha256 first)
        return joblib.load(path)


class XGBoostModel(TabularClassifier):
    backend = "xgboost"
    defaults: ClassVar[dict[str, Any]] = {"n_estimators": 200, "max_depth": 6, "learning_rate": 0.1}

    def _fit_estimator(self, x: np.ndarray, y: np.ndarray, n_classes: int) -> Any:
        from xgboost import XGBClassifier

        try:
            estimator = XGBClassifier(random_state=self.seed, tree_method="hist", **self.effective_params())
            return estimator.fit(x, y)
        except (TypeError, ValueError) as exc:
            raise self._bad_params(exc) from exc

    def _save_estimator(self, directory: Path) -> str:
        self.estimator_.save_model(directory / "model.ubj")
        return "model.ubj"

    @classmethod
    def _load_estimator(cls, path: Path) -> Any:
        require_extra("xgboost", "classifier", "an XGBoost model")
        from xgboost import XGBClassifier

        estimator = XGBClassifier()
        estimator.load_model(path)
        return estimator


class LightGBMModel(TabularClassifier):
    backend = "lightgbm"
    defaults: ClassVar[dict[str, Any]] = {"n_estimators": 200, "learning_rate": 0.1, "num_leaves": 31}

    def _fit_estimator(self, x: np.ndarray, y: np.ndarray, n_classes: int) -> Any:
        from lightgbm import LGBMClassifier

        try:
            # deterministic + row-wise histograms: the same seed gives the same trees
            estimator = LGBMClassifier(
                random_state=self.seed,
                deterministic=True,
                force_row_wise=True,
                verbose=-1,
                **self.effective_params(),
            )
            return estimator.fit(x, y).booster_
        except (TypeError, ValueError) as exc:
            raise self._bad_params(exc) from exc

    def _proba(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.estimator_.predict(x))

    def _save_estimator(self, directory: Path) -> str:
        self.estimator_.save_model(str(directory / "model.txt"))
        return "model.txt"

    @classmethod
    def _load_estimator(cls, path: Path) -> Any:
        require_extra("lightgbm", "classifier", "a LightGBM model")
        from lightgbm import Booster

        return Booster(model_file=str(path))
