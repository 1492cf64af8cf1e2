"""Configuration: environment variables (``POLICY_PUSH_*``) and an optional TOML file.

Every setting is declared once, here, with its default and help text; the README table and a
docs test are kept in step with this class.  Precedence, highest first: keyword arguments,
environment variables, the TOML file named by ``POLICY_PUSH_CONFIG`` (or passed as
``config_file``), then the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = ["Settings", "load_settings"]

_DEFAULT_DATA_DIR = Path("./policy_push_data")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POLICY_PUSH_", extra="forbid", validate_default=True)

    data_dir: Path = Field(_DEFAULT_DATA_DIR, description="Directory for the embedded SQLite file, reports and the match index.")
    database_url: str = Field(
        "",
        description="SQLAlchemy async URL, e.g. postgresql+asyncpg://user@127.0.0.1:5432/policy_push. "
        "Empty means embedded SQLite at DATA_DIR/policy_push.db.",
    )
    sqlite_busy_timeout_ms: int = Field(5000, ge=0, description="SQLite busy timeout for concurrent writers.")
    pii_key: SecretStr | None = Field(
        None,
        description="Base64 of 32 random bytes; encrypts phone numbers, ID numbers and openids (AES-GCM) "
        "and keys their look-up hashes. Required outside demo mode.",
    )
    demo: bool = Field(False, description="Demo mode: a fixed, publicly known PII key is allowed. Never in production.")
    api_token: SecretStr | None = Field(
        None, description="Bearer token required for every API write and every read of personal data."
    )
    host: str = Field("127.0.0.1", description="Address `serve` listens on.")
    port: int = Field(8080, ge=0, le=65535, description="Port `serve` listens on.")
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024, description="Largest HTTP request body; larger gets 413.")
    max_import_line_bytes: int = Field(
        1024 * 1024, ge=1024, description="Largest line of an import file; a longer line is rejected unread."
    )
    max_text_chars: int = Field(200_000, ge=100, description="Longest policy `text` field, in characters.")
    max_short_text_chars: int = Field(2_000, ge=10, description="Longest title, summary, business scope and other short texts.")
    max_criteria_depth: int = Field(32, ge=1, le=64, description="Deepest nesting of a criteria tree.")
    regions_csv: Path | None = Field(None, description="A newer regions table (code,name,parent_code,level) to use instead of the shipped one.")
    industries_csv: Path | None = Field(None, description="A newer GB/T 4754 table (code,name,parent,level) to use instead of the shipped one.")
    log_level: str = Field("INFO", description="Python logging level.")
    public_base_url: str = Field(
        "",
        description="Public address of this service, used in the links of messages (`/p/<policy>?d=<delivery>`). "
        "Empty means http://HOST:PORT.",
    )
    sms_sign_name: str = Field("盘锦政务", description="SMS signature (签名) shown as 【…】 before every text.")
    sms_link_base: str = Field(
        "https://s.pj.gov.cn/",
        description="Fixed part of the short link in the approved SMS template; the SMS carries only the code "
        "after it, which the short-link host sends on to PUBLIC_BASE_URL/s/<code>.",
    )
    sms_opt_out_text: str = Field("回复TD退订", description="Opt-out line appended to every SMS.")
    message_template: str = Field(
        "policy_notice", description="Logical template name of policy messages; each provider maps it to its own template."
    )
    wechat_template_fields: str = Field(
        "thing1=title,time2=deadline,thing3=benefit,thing4=reason",
        description="WeChat template keys and the message field each shows (title, summary, reason, deadline, benefit, link).",
    )

    @field_validator("log_level")
    @classmethod
    def _upper(cls, v: str) -> str:
        return v.upper()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = os.environ.get("POLICY_PUSH_CONFIG")
        if toml_path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_path)))
        return tuple(sources)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'policy_push.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build settings; ``config_file`` names a TOML file (same keys as the fields, lower case)."""
    if config_file is not None:
        old = os.environ.get("POLICY_PUSH_CONFIG")
        os.environ["POLICY_PUSH_CONFIG"] = str(config_file)
        try:
            return Settings(**overrides)
        finally:
            if old is None:
                del os.environ["POLICY_PUSH_CONFIG"]
            else:
                os.environ["POLICY_PUSH_CONFIG"] = old
    return Settings(**overrides)


def settings_table() -> str:
    """The README's configuration table, generated from the fields above."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "(none)" if default is None or default == "" else f"`{default}`"
        rows.append(f"| `POLICY_PUSH_{name.upper()}` | {shown} | {field.description} |")
    return "\n".join(rows)
