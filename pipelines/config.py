"""Training configuration: a YAML or TOML file plus ``--set key=value`` overrides, validated up front.

```yaml
detector:            # keyword arguments of anomaly_vae.VAEDetector (ImageVAEDetector for images)
  max_steps: 800
  hidden: [64, 32]
data:
  kind: auto         # tabular, image, or auto: folders of images, MVTec trees, .npz/.npy are images
  max_rows: 2000000  # sample larger data sets down to about this many rows
  drop_columns: [event_id]  # columns never used as features (also --drop-columns a,b)
  train_on: normal   # with a label column: fit on the rows labelled 0 only; "all": on every row
evaluation:
  test_fraction: 0.2 # labelled data: share held out for AUROC / AUPR / precision / recall
  min_auroc: 0.6     # floors: a model below them is not registered
  min_aupr: null
```
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from anomaly_vae import ImageVAEDetector, VAEDetector

DETECTORS = {"tabular": VAEDetector, "image": ImageVAEDetector}


class _Section(BaseModel):
    # A misspelt key is an error, not a silently ignored setting; settings do not change once read.
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSettings(_Section):
    kind: Literal["auto", "tabular", "image"] = "auto"
    max_rows: int | None = Field(2_000_000, ge=100, strict=True)
    drop_columns: list[str] = Field([], strict=True)
    train_on: Literal["normal", "all"] = "normal"

    @field_validator("drop_columns", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """One string is a comma-separated list of names (as ``--set data.drop_columns=a,b`` gives)."""
        return [name.strip() for name in value.split(",")] if isinstance(value, str) else value

    @field_validator("drop_columns")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        if not all(names):
            raise ValueError(f"data.drop_columns has an empty column name: {names}")
        return list(dict.fromkeys(names))  # each name once, in the order given


class EvaluationSettings(_Section):
    # strict: a quoted number or a boolean is refused, not converted
    test_fraction: float = Field(0.2, gt=0.0, lt=0.9, strict=True)
    min_auroc: float | None = Field(None, ge=0.0, le=1.0, strict=True)
    min_aupr: float | None = Field(None, ge=0.0, le=1.0, strict=True)


class TrainSettings(_Section):
    detector: dict[str, Any] = {}  # keyword arguments of VAEDetector or ImageVAEDetector (data.kind)
    data: DataSettings = DataSettings()
    evaluation: EvaluationSettings = EvaluationSettings()

    @model_validator(mode="after")
    def _detector_arguments(self) -> TrainSettings:
        """Settings that no detector of ``data.kind`` takes are refused (with "auto": neither kind)."""
        kinds = list(DETECTORS) if self.data.kind == "auto" else [self.data.kind]
        known = set().union(*(DETECTORS[kind]().get_params() for kind in kinds))
        bad = sorted(set(self.detector) - known)
        if bad:
            names = " or ".join(f"anomaly_vae.{DETECTORS[kind].__name__}" for kind in kinds)
            raise ValueError(f"unknown detector setting(s): {bad}; see help({names})")
        for name in ("hidden", "image_size"):  # tuples in the detector, lists in YAML
            if isinstance(self.detector.get(name), list):
                self.detector[name] = tuple(self.detector[name])
        return self


# What each checked value must be, for the error message of a value out of range or of the wrong type.
_EXPECTED = {
    "data.kind": "'auto', 'tabular' or 'image'",
    "data.max_rows": "an integer >= 100 or null",
    "data.drop_columns": "a list of column names (or one comma-separated string)",
    "data.train_on": "'normal' or 'all'",
    "evaluation.test_fraction": "in (0, 0.9)",
    "evaluation.min_auroc": "in [0, 1] or null",
    "evaluation.min_aupr": "in [0, 1] or null",
}


def load_settings(
    path: Path | None = None,
    overrides: Sequence[str] = (),
    *,
    drop_columns: Sequence[str] = (),
    train_on: str | None = None,
    kind: str | None = None,
) -> TrainSettings:
    """The settings of ``path`` with the ``--set`` ``overrides``; ``drop_columns`` are added to
    ``data.drop_columns``; ``train_on`` and ``kind``, when given, replace ``data.train_on`` and
    ``data.kind`` (the command's options)."""
    raw: dict[str, Any] = _read_file(Path(path)) if path else {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ValueError(f"--set expects section.key=value (e.g. detector.max_steps=500), got: {item!r}")
        section, name = key.split(".", 1)
        raw.setdefault(section, {})[name] = yaml.safe_load(value)
    settings = validate(raw)
    options: dict[str, Any] = {}
    if drop_columns:
        options["drop_columns"] = [*settings.data.drop_columns, *drop_columns]
    if train_on is not None:
        options["train_on"] = train_on
    if kind is not None:
        options["kind"] = kind
    if not options:
        return settings
    return validate({**raw, "data": {**raw.get("data", {}), **options}})


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    text = path.read_text()
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        raise ValueError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'YAML'}: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of sections (detector, data, evaluation)")
    return data


def validate(raw: dict[str, Any]) -> TrainSettings:
    try:
        return TrainSettings.model_validate(raw)
    except ValidationError as error:
        raise ValueError(_message(error.errors())) from None


def _message(errors: list[Any]) -> str:
    """One line naming the first wrong key, as the command prints it (unknown sections first)."""
    unknown = [error["loc"] for error in errors if error["type"] == "extra_forbidden"]
    sections = sorted(loc[0] for loc in unknown if len(loc) == 1)
    if sections:
        return f"unknown config section(s): {sections}; expected detector, data, evaluation"
    error = errors[0]
    loc = error["loc"]
    if error["type"] in ("dict_type", "model_type"):
        return "each config section must be a mapping of keys to values"
    if error["type"] == "value_error":  # raised by a validator with its own message
        return str(error["ctx"]["error"])
    if error["type"] == "extra_forbidden":
        section = loc[0]
        names = sorted(other[1] for other in unknown if other[0] == section)
        known = sorted({"data": DataSettings, "evaluation": EvaluationSettings}[section].model_fields)
        return f"unknown {section} setting(s): {names}; expected {known}"
    key = ".".join(str(part) for part in loc[:2])
    return f"{key} must be {_EXPECTED[key]}, got: {error['input']!r}"
