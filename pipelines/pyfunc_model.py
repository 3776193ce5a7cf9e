"""The MLflow pyfunc flavour of a detector, logged as "model from code" (no pickled Python object), and
the signature it is logged with.

``predict`` returns the score columns of the detector's ``score_frame``; the optional ``fpr`` parameter
chooses the false-positive rate of ``is_outlier`` per call. A tabular model takes the model's columns; an
image model one column ``image`` of base64-encoded PNG or JPEG files (as text, or the files' bytes).
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel, PythonModelContext
from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema
from mlflow.types.schema import AnyType

import anomaly_vae
from anomaly_vae.base import BaseDetector
from anomaly_vae.image.data import decode_image_field
from anomaly_vae.registry import DETECTOR_ARTIFACT

IMAGE_COLUMN = "image"
OUTPUT_TYPES = {"b": DataType.boolean, "i": DataType.long, "u": DataType.long, "f": DataType.double}


class DetectorModel(PythonModel):
    def load_context(self, context: PythonModelContext) -> None:
        self.detector = anomaly_vae.load(context.artifacts[DETECTOR_ARTIFACT])

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        fpr = (params or {}).get("fpr")
        return self.detector.score_frame(model_inputs(self.detector, model_input), fpr=fpr).reset_index(drop=True)


def model_inputs(detector: BaseDetector, frame: pd.DataFrame) -> Any:
    """What the detector scores: the frame itself, or for an image model the images of its column ``image``."""
    if detector.kind != "image":
        return frame
    if IMAGE_COLUMN not in frame.columns:
        raise ValueError(f"an image model takes a column {IMAGE_COLUMN!r} of base64-encoded PNG/JPEG files")
    return [decode_image_field(value, item=f"{IMAGE_COLUMN}[{i}]") for i, value in enumerate(frame[IMAGE_COLUMN])]


def model_signature(detector: BaseDetector, example: pd.DataFrame) -> ModelSignature:
    """The signature of ``predict``: every column of the model, required, of any type; the score columns
    (as ``example`` gets them); the ``fpr`` parameter.

    The input types are left to the detector, which validates every value and names the column of a bad
    one, and accepts what the service accepts. MLflow's checks of typed columns would refuse some of it:
    a missing value in an integer column ("long" takes no float), integers in a "double" column (MLflow
    converts int64 to double only for values that fit in 6 bytes), 0/1 in a "boolean" one.
    """
    if detector.kind == "image":
        inputs = Schema([ColSpec(DataType.string, IMAGE_COLUMN)])
    else:
        inputs = Schema([ColSpec(AnyType(), name) for name in detector.feature_names_in_])
    scores = detector.score_columns(model_inputs(detector, example))
    outputs = Schema([ColSpec(OUTPUT_TYPES[values.dtype.kind], name) for name, values in scores.items()])
    return ModelSignature(inputs, outputs, ParamSchema([ParamSpec("fpr", DataType.double, detector.fpr)]))


mlflow.models.set_model(DetectorModel())
