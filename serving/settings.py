"""Service settings, from ``ANOMALY_VAE_*`` environment variables; nothing else reads the environment."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ANOMALY_VAE_", protected_namespaces=())

    model_uri: str = Field(description="models:/NAME@ALIAS, models:/NAME/VERSION, runs:/... or a model folder")
    max_records: int = Field(1000, ge=1, description="records per request")
    max_body_bytes: int = Field(4_000_000, ge=1024, description="request body size limit")
    max_in_flight: int = Field(64, ge=0, description="scoring requests in flight, beyond: 503 + Retry-After; 0 = off")
    auth_token: SecretStr | None = Field(None, description="when set, requests need 'Authorization: Bearer ...'")
    reload_interval_seconds: float = Field(30.0, ge=0, description="registry alias check period; 0 = never")
    drain_seconds: float = Field(5.0, ge=0, description="after SIGTERM: seconds of 503 readiness before stopping")
    workers: int = Field(0, ge=0, description="worker processes sharing the port; 0 = one per CPU available")
    device: str = "cpu"
    drift_window: int = Field(1000, ge=0, description="records per drift window; 0 = no live drift")
    drift_step: int = Field(250, ge=1, description="new records between two drift windows")
    drift_min_interval_seconds: float = Field(10.0, ge=0, description="at least this long between drift windows")
    drift_max_features: int = Field(20, ge=1, description="features with their own drift series (highest PSI)")


@lru_cache
def get_settings() -> Settings:
    return Settings()  # type: ignore[call-arg]
