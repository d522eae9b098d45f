"""Process settings, from the environment (prefix ``GREENGAUGE_``) or a ``.env`` file."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "postgresql://127.0.0.1:5432/greengauge"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GREENGAUGE_", env_file=".env", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    #: where the demo keeps its files (chart, private PostgreSQL cluster if one is needed)
    workdir: str = ".greengauge"
    log_level: str = "INFO"


def get_settings() -> Settings:
    return Settings()
