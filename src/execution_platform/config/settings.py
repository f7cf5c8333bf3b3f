"""Environment settings (prefix ``EP_``, also read from ``.env``), as documented in the README (the external contract).

The standard unprefixed names (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ``GEMINI_API_KEY`` /
``GOOGLE_API_KEY``) are honoured when the ``EP_`` one is unset, so existing shells just work.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(name: str, *fallbacks: str) -> AliasChoices:
    return AliasChoices(f"EP_{name}", *fallbacks)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    openai_api_key: SecretStr | None = Field(None, validation_alias=_env("OPENAI_API_KEY", "OPENAI_API_KEY"))
    openai_base_url: str | None = Field(None, validation_alias=_env("OPENAI_BASE_URL"))
    anthropic_api_key: SecretStr | None = Field(
        None, validation_alias=_env("ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY")
    )
    anthropic_base_url: str | None = Field(None, validation_alias=_env("ANTHROPIC_BASE_URL"))
    gemini_api_key: SecretStr | None = Field(
        None, validation_alias=_env("GEMINI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")
    )
    gemini_base_url: str | None = Field(None, validation_alias=_env("GEMINI_BASE_URL"))
    config: Path | None = Field(None, validation_alias=_env("CONFIG"))
    database_url: str | None = Field(None, validation_alias=_env("DATABASE_URL"))
    redis_url: str | None = Field(None, validation_alias=_env("REDIS_URL"))
    master_key: SecretStr | None = Field(None, validation_alias=_env("MASTER_KEY"))
    workspace_root: Path | None = Field(None, validation_alias=_env("WORKSPACE_ROOT"))
    # The ``local`` provider's engine (defaults, and why, in providers/local_supervisor.EngineConfig).
    local_model: Path | None = Field(None, validation_alias=_env("LOCAL_MODEL"))
    local_threads: int | None = Field(None, validation_alias=_env("LOCAL_THREADS"))
    local_ctx: int | None = Field(None, validation_alias=_env("LOCAL_CTX"))
    local_parallel: int | None = Field(None, validation_alias=_env("LOCAL_PARALLEL"))
    local_idle_unload: float | None = Field(None, validation_alias=_env("LOCAL_IDLE_UNLOAD"))
    # The gateway's same-format fast path (answers forwarded as the upstream's bytes); ``0`` turns it
    # off, as does ``server.fast_path: false`` in the YAML file.
    fast_path: bool = Field(True, validation_alias=_env("FAST_PATH"))

    def secret(self, name: str) -> str | None:
        value = getattr(self, name)
        return value.get_secret_value() if value is not None else None

    def resolved_database_url(self) -> str:
        """``EP_DATABASE_URL`` or a SQLite file in the working directory."""
        return self.database_url or f"sqlite:///{Path.cwd() / 'ep.db'}"


MASTER_KEY_MIN_CHARS = 16


def master_key_problem(value: str | None) -> str | None:
    """Why a configured master key is unusable (the external contract: at least 16 non-blank characters), or None.

    Unset is fine (open mode, loopback only); a set but blank or short key would let a guess, or
    nothing at all, pass for the administrator, so the gateway refuses to start with it.
    """
    if value is None:
        return None
    if len(value.strip()) < MASTER_KEY_MIN_CHARS or len("".join(value.split())) < MASTER_KEY_MIN_CHARS:
        return (f"EP_MASTER_KEY must be at least {MASTER_KEY_MIN_CHARS} non-blank characters "
                f"(got {len(value.strip())}); unset it to serve without authentication on loopback")
    return None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
