"""The ``python_function`` flavour of a registered Conveyor model.

MLflow's own tools (``mlflow.pyfunc.load_model``, ``mlflow models serve``)
load a registered version through this small wrapper: it verifies the sha256
of the Conveyor model files, then loads them with :func:`conveyor.models.load_model`.

The version stores :mod:`._pyfunc_code` ("models from code") rather than a
pickled instance of the wrapper.

Inputs and outputs are pandas data frames:

- classifier: feature columns in, one probability column per class plus
  ``prediction`` out;
- recommender: a ``user_id`` column (and optionally ``k``) in; ``user_id``,
  ``items``, ``scores`` and ``fallback`` out. A version registered with an input
  example carries a signature whose parameter ``k`` (default 10) is passed as
  ``predict(frame, params={"k": 5})``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import mlflow.pyfunc

from conveyor.errors import InputError
from conveyor.models import Classifier, Model, Recommender, load_model
from conveyor.registry._checksum import verify_sha256
from conveyor.registry._versions import MODEL_ARTIFACT

DEFAULT_K = 10


# MLflow warns at class creation that predict has no type hints; the frames are free-form
# on purpose (any feature columns), so that warning is silenced here only.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*type hint.*", category=UserWarning)

    class ConveyorPyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
        """Loads a checksum-verified Conveyor model; predicts on pandas frames."""

        model: Model

        def load_context(self, context: Any) -> None:
            directory = Path(context.artifacts[MODEL_ARTIFACT])
            expected = str((context.model_config or {}).get("sha256", ""))
            verify_sha256(directory, expected, what=f"pyfunc model at {directory}")
            self.model = load_model(directory)

        # no type hint on model_input: MLflow would build a schema from it (pandas frames of any shape)
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            import numpy as np
            import pandas as pd
            import polars as pl

            frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
            if isinstance(self.model, Classifier):
                proba = self.model.predict_proba(pl.from_pandas(frame))
                out = pd.DataFrame(proba, columns=[str(c) for c in self.model.classes])
                # the labels from the same probabilities (what Classifier.predict computes): one
                # model pass per call, as `conveyor serve` does — not a second predict_proba
                out["prediction"] = np.asarray(self.model.classes, dtype=object)[np.argmax(proba, axis=1)]
                return out
            if isinstance(self.model, Recommender):
                if "user_id" not in frame.columns:
                    raise InputError("recommender input needs a 'user_id' column")
                k = int((params or {}).get("k", frame["k"].iloc[0] if "k" in frame.columns else DEFAULT_K))
                recs = self.model.recommend(frame["user_id"].tolist(), k)
                return pd.DataFrame(
                    {
                        "user_id": [r.user_id for r in recs],
                        "items": [r.items for r in recs],
                        "scores": [r.scores for r in recs],
                        "fallback": [r.fallback for r in recs],
                    }
                )
            raise InputError(f"unsupported model kind {self.model.kind!r}")
