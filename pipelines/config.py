"""Training configuration: a YAML or TOML file plus ``--set key=value`` overrides, validated up front.

```yaml
detector:            # keyword arguments of anomaly_vae.VAEDetector
  max_steps: 800
  hidden: [64, 32]
data:
  max_rows: 2000000  # sample larger data sets down to about this many rows
evaluation:
  test_fraction: 0.2 # labelled data: share held out for AUROC / AUPR / precision / recall
  min_auroc: 0.6     # floors: a model below them is not registered
  min_aupr: null
```
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from anomaly_vae import VAEDetector


@dataclass(frozen=True)
class DataSettings:
    max_rows: int | None = 2_000_000


@dataclass(frozen=True)
class EvaluationSettings:
    test_fraction: float = 0.2
    min_auroc: float | None = None
    min_aupr: float | None = None


@dataclass(frozen=True)
class TrainSettings:
    detector: dict[str, Any] = field(default_factory=dict)
    data: DataSettings = DataSettings()
    evaluation: EvaluationSettings = EvaluationSettings()


def load_settings(path: Path | None = None, overrides: list[str] = ()) -> TrainSettings:  # type: ignore[assignment]
    raw: dict[str, Any] = _read_file(Path(path)) if path else {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ValueError(f"--set expects section.key=value (e.g. detector.max_steps=500), got: {item!r}")
        section, name = key.split(".", 1)
        raw.setdefault(section, {})[name] = yaml.safe_load(value)
    return validate(raw)


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
    unknown = set(raw) - {"detector", "data", "evaluation"}
    if unknown:
        raise ValueError(f"unknown config section(s): {sorted(unknown)}; expected detector, data, evaluation")
    for section in raw.values():
        if not isinstance(section, dict):
            raise ValueError("each config section must be a mapping of keys to values")
    detector = dict(raw.get("detector", {}))
    allowed = set(VAEDetector().get_params())
    bad = sorted(set(detector) - allowed)
    if bad:
        raise ValueError(f"unknown detector setting(s): {bad}; see help(anomaly_vae.VAEDetector)")
    if "hidden" in detector:
        detector["hidden"] = tuple(detector["hidden"])
    data = _section(DataSettings, raw.get("data", {}), "data")
    evaluation = _section(EvaluationSettings, raw.get("evaluation", {}), "evaluation")
    if data.max_rows is not None and (not isinstance(data.max_rows, int) or data.max_rows < 100):
        raise ValueError(f"data.max_rows must be an integer >= 100 or null, got: {data.max_rows!r}")
    if not (isinstance(evaluation.test_fraction, float) and 0.0 < evaluation.test_fraction < 0.9):
        raise ValueError(f"evaluation.test_fraction must be in (0, 0.9), got: {evaluation.test_fraction!r}")
    for name in ("min_auroc", "min_aupr"):
        value = getattr(evaluation, name)
        if value is not None and not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
            raise ValueError(f"evaluation.{name} must be in [0, 1] or null, got: {value!r}")
    return TrainSettings(detector=detector, data=data, evaluation=evaluation)


def _section(cls: type, values: dict[str, Any], name: str) -> Any:
    known = {f.name for f in fields(cls)}
    bad = sorted(set(values) - known)
    if bad:
        raise ValueError(f"unknown {name} setting(s): {bad}; expected {sorted(known)}")
    return cls(**values)
