"""Request and response bodies of the REST API (separate from library types)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Value = float | int | str | bool | None


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # strict: "0.5" is not a number, "yes" not a bool

    records: list[dict[str, Value]] = Field(min_length=1, description="one object per record; null = missing")
    fpr: float | None = Field(None, gt=0, lt=1, description="false-positive rate for is_outlier")
    contributions: bool = Field(False, description="add contribution_<column> to each result")


class ModelIdentity(BaseModel):
    name: str
    version: str


class ScoreResponse(BaseModel):
    model: ModelIdentity
    results: list[dict[str, float | bool]]


class InvocationsResponse(BaseModel):
    predictions: list[dict[str, float | bool]]


class DataframeSplit(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    columns: list[str]
    data: list[list[Value]]


class InvocationsRequest(BaseModel):
    """MLflow's scoring protocol: exactly one of ``dataframe_split`` / ``dataframe_records``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    dataframe_split: DataframeSplit | None = None
    dataframe_records: list[dict[str, Value]] | None = None
    params: dict[str, Any] | None = None


class ModelDescription(BaseModel):
    name: str
    version: str
    default_score: str
    fpr: float
    thresholds: dict[str, float]
    columns: list[dict[str, Any]]


class ErrorDetail(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: the field path, a readable message, a machine-readable type; never the input."""

    detail: list[ErrorDetail]
