"""Settings of the bureau API, from the environment (prefix ``GREENGAUGE_``) or a ``.env`` file."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "postgresql://127.0.0.1:5432/greengauge"


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GREENGAUGE_", env_file=".env", extra="ignore")

    #: the owner's database URL (migrations, tokens); the API itself connects as its service role
    database_url: str = DEFAULT_DATABASE_URL
    #: the service role's URL; default: database_url with the user set to store.tenancy.service_role
    api_database_url: str | None = None
    #: with api_database_url unset: the service role's password, set at start by the owner (database_url)
    api_db_password: str | None = None
    #: PEM file of the Ed25519 private key statements are signed with (`greengauge api keygen FILE`)
    signing_key_file: str | None = None
    #: more public keys to serve in the JWKS (earlier keys, so old statements still verify): PEM files, comma-separated
    verify_key_files: str = ""
    #: connections the API keeps open
    api_pool_size: int = 8
    #: rows one page of an export holds at most
    api_max_rows: int = 100_000
