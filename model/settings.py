"""Process settings, from the environment (prefix ``GREENGAUGE_``) or a ``.env`` file."""

from __future__ import annotations

from pathlib import Path

from psycopg.conninfo import make_conninfo
from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "postgresql://127.0.0.1:5432/greengauge"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GREENGAUGE_", env_file=".env", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    #: a file holding the database password (a Docker secret, say): the password never sits in a
    #: URL, so it needs no percent-encoding and does not show in the process environment
    database_password_file: Path | None = None
    #: where the demo keeps its files (chart, private PostgreSQL cluster if one is needed)
    workdir: str = ".greengauge"
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _password_from_file(self) -> Settings:
        if self.database_password_file is not None:
            f = self.database_password_file
            try:
                secret = f.read_text(encoding="utf-8").rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"GREENGAUGE_DATABASE_PASSWORD_FILE {f}: cannot read it ({exc}); "
                                 "point it at a readable file holding the password") from None
            # libpq keyword/value conninfo, quoted by psycopg: any character is safe in the password
            self.database_url = make_conninfo(self.database_url, password=secret)
        return self


def get_settings() -> Settings:
    return Settings()
