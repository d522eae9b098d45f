"""Settings of the bureau API, from the environment (prefix ``GREENGAUGE_``) or a ``.env`` file;
the database settings (URL, password file) are the shared ones of :mod:`model.settings`."""

from __future__ import annotations

from pathlib import Path

from model.settings import Settings


class ApiSettings(Settings):
    #: the service role's URL; default: database_url with the user set to store.tenancy.service_role
    api_database_url: str | None = None
    #: with api_database_url unset: a file holding the service role's password (a Docker secret),
    #: set at start by the owner (database_url)
    api_db_password_file: Path | None = None
    #: PEM file of the Ed25519 private key statements are signed with (`greengauge api keygen FILE`)
    signing_key_file: str | None = None
    #: more public keys to serve in the JWKS (earlier keys, so old statements still verify): PEM files, comma-separated
    verify_key_files: str = ""
    #: connections the API keeps open
    api_pool_size: int = 8
    #: rows one page of an export holds at most
    api_max_rows: int = 100_000

    def api_db_password(self) -> str | None:
        if self.api_db_password_file is None:
            return None
        try:
            return self.api_db_password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"GREENGAUGE_API_DB_PASSWORD_FILE {self.api_db_password_file}: cannot read it ({exc})") from None
