"""Request and response bodies of the REST API (separate from library types).

The request models check a body's shape: its fields, their types (strictly: "0.5" is not a number,
"yes" not a bool), lists of objects, and the fpr range. The records' values are checked where their
columns are built (serving/records.py), then by the library.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, model_validator

from serving.errors import ApiError

_SCALAR = WithJsonSchema({"type": ["number", "string", "boolean", "null"]})
# One value of a record: checked by serving/records.py as it builds the columns (with the field path of
# the request's format), then by the library.
Value = Annotated[Any, _SCALAR]


def _scalar(value: Any) -> Any:
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise ValueError("expected a number, a string, a boolean or null")
    return value


# A value that is not part of a record (the ignored index of dataframe_split). Checked by one validator,
# so that an error's loc ends at the field (a union of types would add each type's name to it).
Scalar = Annotated[Any, AfterValidator(_scalar), _SCALAR]
# A false-positive rate for is_outlier, per request; the one place where it is checked.
Fpr = Annotated[float | None, Field(gt=0, lt=1, description="false-positive rate for is_outlier")]
FORMATS = ("dataframe_split", "dataframe_records", "inputs", "instances")  # MLflow's JSON formats


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # strict: "0.5" is not a number, "yes" not a bool

    records: list[dict[str, Value]] = Field(min_length=1, description="one object per record; null = missing")
    fpr: Fpr = None
    contributions: bool = Field(False, description="add contribution_<column> to each result")


IMAGE_COLUMN = "image"  # the one column of an image model in MLflow's formats (base64 files)


class ImageItem(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    data: str | None = Field(None, description="a PNG or JPEG file, base64-encoded")
    array: list[Any] | None = Field(
        None, description="pixels as rows: (H, W) or (H, W, C); integers 0-255 or numbers in [0, 1]"
    )

    @model_validator(mode="after")
    def _one_of(self) -> ImageItem:
        if (self.data is None) == (self.array is None):
            raise ValueError("give exactly one of data (base64 file) and array (pixels)")
        return self


class ImageScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    images: list[ImageItem] = Field(min_length=1, description="the images to score")
    fpr: Fpr = None
    maps: bool = Field(False, description="add each image's anomaly map (map_png, map) to its result")


class ModelIdentity(BaseModel):
    name: str
    version: str


class ScoreResponse(BaseModel):
    model: ModelIdentity
    fpr: float = Field(description="the false-positive rate is_outlier was decided at (the request's or the model's)")
    fpr_resolvable: bool = Field(
        description="false when the model's calibration set is too small for fpr: then no record is flagged"
    )
    results: list[dict[str, float | bool]]


class InvocationsResponse(BaseModel):
    predictions: list[dict[str, float | bool]]


class DataframeSplit(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    columns: list[str]
    data: list[list[Value]]
    index: list[Scalar] | None = Field(None, description="ignored: predictions come in the order of data")


_RECORDS_OR_COLUMNS = WithJsonSchema(
    {
        "anyOf": [
            {"type": "array", "items": {"type": "object"}},
            {"type": "object", "additionalProperties": {}},
            {"type": "null"},
        ],
        "description": "a list of records, or an object of columns (column: list of values, or one value)",
    }
)


class InvocationParams(BaseModel):
    """MLflow's ``params``: ``fpr`` is used, other parameters are ignored."""

    model_config = ConfigDict(extra="allow", strict=True)

    fpr: Fpr = None


class InvocationsRequest(BaseModel):
    """MLflow's scoring protocol: exactly one of ``dataframe_split``, ``dataframe_records``, ``inputs``,
    ``instances`` (serving/invocations.py)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    dataframe_split: DataframeSplit | None = None
    dataframe_records: list[dict[str, Value]] | None = None
    inputs: Annotated[Any, _RECORDS_OR_COLUMNS] = None  # checked in serving/invocations.py, with field paths
    instances: Annotated[Any, _RECORDS_OR_COLUMNS] = None
    params: InvocationParams | None = None


class ModelDescription(BaseModel):
    name: str
    version: str
    kind: str = Field(description="tabular or image")
    default_score: str
    fpr: float
    smallest_fpr: float = Field(description="the smallest fpr the calibration resolves; below it nothing is flagged")
    fpr_resolvable: bool = Field(description="whether the calibration resolves the model's own fpr")
    thresholds: dict[str, float]
    columns: list[dict[str, Any]] = Field(description="a tabular model's columns (empty for an image model)")
    image: dict[str, int] | None = Field(
        None, description="an image model's input: height, width and channels it scores at, max_pixels accepted"
    )


class ErrorDetail(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: the field path, a readable message, a machine-readable type; never the input."""

    detail: list[ErrorDetail]


def validated(schema: type[BaseModel], data: Any) -> Any:
    """``data`` as ``schema``; the first error as a 422 with its field path."""
    try:
        return schema.model_validate(data)
    except ValidationError as error:
        first = error.errors(include_input=False, include_url=False)[0]
        raise ApiError(422, ["body", *first["loc"]], first["msg"], first["type"]) from None
