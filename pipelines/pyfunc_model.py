"""The MLflow pyfunc flavour of a detector, logged as "model from code" (no pickled Python object).

``predict`` returns the score columns of ``VAEDetector.score_frame``; the optional ``fpr`` parameter
chooses the false-positive rate of ``is_outlier`` per call.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

from anomaly_vae import VAEDetector
from anomaly_vae.registry import DETECTOR_ARTIFACT


class DetectorModel(PythonModel):
    def load_context(self, context: PythonModelContext) -> None:
        self.detector = VAEDetector.load(context.artifacts[DETECTOR_ARTIFACT])

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        fpr = (params or {}).get("fpr")
        return self.detector.score_frame(model_input, fpr=fpr).reset_index(drop=True)


mlflow.models.set_model(DetectorModel())
