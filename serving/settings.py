"""Service settings, from ``ANOMALY_VAE_*`` environment variables; nothing else reads the environment."""

from __future__ import annotations

import re
from functools import lru_cache

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "ANOMALY_VAE_"
# A bearer token is visible ASCII (RFC 6750 allows less: letters, digits and -._~+/=); HTTP header values
# are bytes, so a token outside ASCII would depend on how each client encodes it.
_TOKEN = re.compile(r"[\x21-\x7e]+")
MIN_TOKEN_LENGTH = 16  # `openssl rand -hex 8`, 64 random bits, is the shortest token accepted
# Tokens copied from an example or left as a reminder (deploy/ once shipped the first one): never live.
_PLACEHOLDER = re.compile(r"replace[-_]?(me|with)|change[-_]?(me|it)|placeholder|your[-_]?(token|secret)|<[^>]*>", re.I)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, protected_namespaces=())

    model_uri: str = Field(description="models:/NAME@ALIAS, models:/NAME/VERSION, runs:/... or a model folder")
    max_records: int = Field(1000, ge=1, description="records per request")
    max_body_bytes: int = Field(4_000_000, ge=1024, description="request body size limit")
    max_in_flight: int = Field(64, ge=0, description="scoring requests in flight, beyond: 503 + Retry-After; 0 = off")
    auth_token: SecretStr | None = Field(
        None, description="when set, requests need 'Authorization: Bearer ...' (16+ characters)"
    )
    reload_interval_seconds: float = Field(30.0, ge=0, description="registry alias check period; 0 = never")
    drain_seconds: float = Field(5.0, ge=0, description="after SIGTERM: seconds of 503 readiness before stopping")
    workers: int = Field(0, ge=0, description="worker processes sharing the port; 0 = one per CPU available")
    device: str = "cpu"
    drift_window: int = Field(1000, ge=0, description="records per drift window; 0 = no live drift")
    drift_step: int = Field(250, ge=1, description="new records between two drift windows")
    drift_min_interval_seconds: float = Field(10.0, ge=0, description="at least this long between drift windows")
    drift_max_features: int = Field(20, ge=1, description="features with their own drift series (highest PSI)")

    @field_validator("auth_token")
    @classmethod
    def _usable_token(cls, token: SecretStr | None) -> SecretStr | None:
        """Refused at start-up: a token clients cannot send the same way, a placeholder, a short one."""
        if token is None:
            return None
        value, advice = token.get_secret_value(), "e.g. from `openssl rand -hex 32`"
        if not _TOKEN.fullmatch(value):
            raise ValueError(
                f"the bearer token must be one or more visible ASCII characters (no spaces), {advice}; "
                "unset the variable to turn authentication off"
            )
        if _PLACEHOLDER.search(value):
            raise ValueError(f"the bearer token is a placeholder from an example; set a random one, {advice}")
        if len(value) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"the bearer token is shorter than {MIN_TOKEN_LENGTH} characters; set a random one, {advice}"
            )
        return token


def describe_errors(error: ValidationError) -> str:
    """The settings' validation errors, each named by its environment variable; never the value."""
    return "; ".join(
        f"{ENV_PREFIX}{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
        for e in error.errors(include_input=False, include_url=False)
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()  # type: ignore[call-arg]
