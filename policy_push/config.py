"""Configuration: environment variables (``POLICY_PUSH_*``) and an optional TOML file.

Every setting is declared once, here, with its default and help text; the README table and a
docs test are kept in step with this class.  Precedence, highest first: keyword arguments,
environment variables, the TOML file named by ``POLICY_PUSH_CONFIG`` (or passed as
``config_file``), then the defaults below.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from channels.callback_auth import SourceAllowList

__all__ = ["Settings", "load_settings"]

_DEFAULT_DATA_DIR = Path("./policy_push_data")


def _quiet_hours_spec(v: str) -> str:
    hours_range(v)  # defined below; looked up when a value is checked
    return v.strip()


#: quiet hours as HH:MM-HH:MM (a type, not a named validator: the field's name is also a status word)
QuietHours = Annotated[str, AfterValidator(_quiet_hours_spec)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POLICY_PUSH_", extra="forbid", validate_default=True)

    data_dir: Path = Field(_DEFAULT_DATA_DIR, description="Directory for the embedded SQLite file, reports and the match index.")
    database_url: str = Field(
        "",
        description="SQLAlchemy async URL, e.g. postgresql+asyncpg://user@127.0.0.1:5432/policy_push. "
        "Empty means embedded SQLite at DATA_DIR/policy_push.db.",
    )
    sqlite_busy_timeout_ms: int = Field(5000, ge=0, description="SQLite busy timeout for concurrent writers.")
    db_pool_size: int = Field(
        20, ge=1, le=500,
        description="Database connections each process keeps open (up to 10 more are opened in a burst and closed "
        "after use: each costs a connect, on SQLite also a thread). Keep it near the requests a process serves at once.",
    )
    pii_key: SecretStr | None = Field(
        None,
        description="Base64 of 32 random bytes; encrypts phone numbers, ID numbers and openids (AES-GCM) "
        "and keys their look-up hashes. Required outside demo mode.",
    )
    demo: bool = Field(False, description="Demo mode: a fixed, publicly known PII key is allowed. Never in production.")
    api_token: SecretStr | None = Field(
        None,
        description="Bootstrap token only: acts as an admin while no active admin account exists (to create the "
        "first one); staff then log in, and machine clients use personal tokens (`policy-push staff token create`).",
    )
    # -- staff console (policy_push.staff, policy_push.web.auth) --------------------------------
    staff_session_minutes: int = Field(
        480, ge=5, le=7 * 24 * 60,
        description="A staff login lasts at most this long, however active (the encrypted cookie expires with it).",
    )  # fmt: skip
    staff_session_idle_minutes: int = Field(
        30, ge=1, le=7 * 24 * 60,
        description="A staff login ends after this long without a request (each request renews it); "
        "never longer than STAFF_SESSION_MINUTES.",
    )  # fmt: skip
    staff_cookie_secure: bool = Field(
        True, description="Send the staff cookie over HTTPS only. Turn off only for plain-HTTP development on localhost."
    )
    staff_lockout_failures: int = Field(5, ge=1, description="Wrong passwords in a row that lock a staff account.")
    staff_lockout_minutes: int = Field(15, ge=1, description="How long a locked staff account stays locked.")
    staff_login_per_minute: int = Field(
        10, ge=1, description="Login attempts one client address may make per minute (more get 429)."
    )
    staff_token_days: int = Field(90, ge=1, le=366, description="Default lifetime of a new API token, in days.")
    host: str = Field("127.0.0.1", description="Address `serve` listens on.")
    port: int = Field(8080, ge=0, le=65535, description="Port `serve` listens on.")
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024, description="Largest HTTP request body; larger gets 413.")
    request_header_timeout_s: float = Field(
        15.0, gt=0, description="Seconds a connection may take to send a request's headers (or stay idle) before it is closed."
    )
    request_body_timeout_s: float = Field(
        30.0, gt=0, description="Seconds a client may take to send a JSON or form body; slower gets 408."
    )
    link_key: SecretStr | None = Field(
        None,
        description="Base64 of 32 random bytes that signs the links in messages (`/p/<policy>?t=<token>`). "
        "Empty: a key derived from PII_KEY.",
    )
    link_ttl_days: int = Field(
        90, ge=1, le=3650, description="Days a message's link (signed token or SMS code) keeps working after it is sent."
    )
    link_lookups_per_minute: int = Field(
        30, ge=1, description="Most link-code and link-token look-ups per minute from one client address (429 beyond)."
    )
    max_import_line_bytes: int = Field(
        1024 * 1024, ge=1024, description="Largest line of an import file; a longer line is rejected unread."
    )
    max_text_chars: int = Field(200_000, ge=100, description="Longest policy `text` field, in characters.")
    max_short_text_chars: int = Field(2_000, ge=10, description="Longest title, summary, business scope and other short texts.")
    max_criteria_depth: int = Field(32, ge=1, le=64, description="Deepest nesting of a criteria tree.")
    regions_csv: Path | None = Field(None, description="A newer regions table (code,name,parent_code,level) to use instead of the shipped one.")
    industries_csv: Path | None = Field(None, description="A newer GB/T 4754 table (code,name,parent,level) to use instead of the shipped one.")
    log_level: str = Field("INFO", description="Logging level: DEBUG, INFO, WARNING, ERROR or CRITICAL.")
    log_format: Literal["text", "json"] = Field(
        "text", description="`text`: one readable line per event; `json`: one JSON object per line (for log collectors)."
    )
    stop_grace_s: float = Field(
        10.0, gt=0, le=300,
        description="Seconds `serve` and `worker` wait, on SIGTERM or SIGINT, for in-flight ticks and requests to "
        "finish before they release their claims and exit.",
    )
    pii_old_keys: SecretStr | None = Field(
        None,
        description="Earlier PII keys, comma-separated base64: read (never written) while `policy-push keys rotate` "
        "re-encrypts their data under POLICY_PUSH_PII_KEY.",
    )
    # -- sending: respect, retries, leases, ticks (policy_push.sending) -----------------------
    local_timezone: str = Field("Asia/Shanghai", description="Time zone of quiet hours, deadlines and reminders.")
    quiet_hours: QuietHours = Field(
        "21:00-08:00", description="Local hours in which nothing non-urgent is sent (HH:MM-HH:MM; empty = none)."
    )
    quiet_hours_by_channel: dict[str, str] = Field(
        {},
        description='Per-channel quiet hours overriding QUIET_HOURS, as JSON, e.g. {"app": "22:00-07:00", "wechat": ""}.',
    )
    frequency_cap: int = Field(3, ge=1, description="Most messages one person gets in any FREQUENCY_CAP_DAYS, across campaigns.")
    frequency_cap_days: float = Field(7.0, gt=0, description="Window of the frequency cap, in days.")
    reminder_days_before: int = Field(7, ge=0, description="Deadline reminders go out this many days before apply_until.")
    retention_days: int = Field(
        365, ge=1, description="Contact data of profiles not updated for this many days (and in no open campaign) is erased."
    )
    claim_lease_s: float = Field(
        30.0, ge=3,
        description="Real seconds a claimed delivery stays its worker's after the worker last renewed the claim "
        "(renewed every quarter of this while it sends); after that the settle tick takes over.",
    )
    receipt_wait_s: float = Field(
        3600.0, ge=0, description="Seconds a sent SMS/WeChat message waits for its receipt before its campaign may finish."
    )
    retry_max_attempts: int = Field(5, ge=1, description="Provider attempts of a delivery before technical_failure.")
    retry_base_delay_s: float = Field(60.0, ge=0, description="First retry backoff (doubles each attempt, with jitter).")
    retry_max_delay_s: float = Field(3600.0, ge=0, description="Longest retry backoff.")
    time_factor: float = Field(
        1.0, gt=0, description="Simulated seconds per real second for the dispatch clock (the demo runs quiet hours in a minute)."
    )
    dispatch_batch_size: int = Field(500, ge=1, le=5000, description="Deliveries claimed per batch.")
    dispatch_concurrency: int = Field(4, ge=1, le=64, description="Batches in flight at once per worker.")
    worker_poll_s: float = Field(1.0, gt=0, description="Real seconds between dispatch ticks of a worker.")
    follow_changes_s: float = Field(
        2.0, gt=0,
        description="Real seconds between two looks at the change feed: how soon `serve` sees what another "
        "process (a CLI import, another node) wrote.",
    )
    leader_renew_s: float = Field(
        10.0, gt=0,
        description="Real seconds between two checks of the scheduler lead (PostgreSQL advisory lock): how soon "
        "another node takes the leader-only ticks after the leader dies.",
    )
    prepare_campaigns_s: float = Field(
        60.0, gt=0,
        description="Real seconds between two leader-only looks for policies whose draft campaign is still to be made.",
    )
    campaign_chunk_rows: int = Field(
        500, ge=1, le=100_000,
        description="Recipients a campaign draft writes per transaction: each chunk commits on its own, so no writer "
        "(the send tick, the API) waits on a large draft for more than one chunk.",
    )
    shard: str = Field(
        "",
        description="The shard (`policy-push shards set`) whose regions' profiles this `serve` node holds; it asks the "
        "other shards for the rest of a match list. Empty: this node holds every profile.",
    )
    service_token: SecretStr | None = Field(
        None,
        description="Shared secret the shard nodes send each other (Bearer) to ask for their parts of a match list; "
        "required with POLICY_PUSH_SHARD.",
    )
    shard_timeout_s: float = Field(
        30.0, gt=0, description="Real seconds a shard node waits for another shard's part before the request fails (503)."
    )
    worker_id: str = Field("", description="Name of this worker in claimed_by; empty = host:pid.")
    # -- providers (policy_push.sending.providers) ----------------------------------------------
    provider_mode: Literal["simulators", "live"] = Field(
        "simulators",
        description="`simulators`: unset provider URLs and credentials default to the local simulators (demo, tests). "
        "`live`: the real providers; credentials are required.",
    )
    aliyun_sms_url: str = Field("", description="Aliyun dysmsapi endpoint; empty = simulator or https://dysmsapi.aliyuncs.com/.")
    aliyun_access_key_id: str = Field("", description="Aliyun AccessKeyId.")
    aliyun_access_key_secret: SecretStr | None = Field(None, description="Aliyun AccessKeySecret.")
    aliyun_template_code: str = Field("", description="Aliyun TemplateCode of MESSAGE_TEMPLATE (simulator default SMS_900001).")
    aliyun_compact_template_codes: str = Field(
        "", description="Aliyun TemplateCodes of the three one-segment templates (with reason, with deadline, short), "
        "comma-separated (simulator default SMS_900002,SMS_900003,SMS_900004). Live without them: the long template only.",
    )
    sms_providers: str = Field(
        "aliyun,tencent",
        description="SMS providers in order of preference (`aliyun`, `tencent`); the router fails over to the next "
        "after repeated provider faults. `aliyun` alone disables SMS failover.",
    )
    tencent_sms_url: str = Field("", description="Tencent Cloud SMS endpoint; empty = simulator or https://sms.tencentcloudapi.com/.")
    tencent_secret_id: str = Field("", description="Tencent Cloud SecretId.")
    tencent_secret_key: SecretStr | None = Field(None, description="Tencent Cloud SecretKey.")
    tencent_report_wait_s: float = Field(
        1800.0, ge=0, description="How long after a send Tencent's records may still come to show it (the carrier's "
        "report): until then settle asks again about a row a dead worker left, rather than giving it up.",
    )
    tencent_sdk_app_id: str = Field("", description="Tencent SMS SdkAppId (simulator default 1400000001).")
    tencent_template_id: str = Field(
        "", description="Tencent TemplateId of MESSAGE_TEMPLATE, slots {1}..{5} = title, benefit, deadline, reason, link "
        "(simulator default 2000001).",
    )
    tencent_compact_template_ids: str = Field(
        "", description="Tencent TemplateIds of the three one-segment templates (slots: title, deadline, reason, link / "
        "title, deadline, link / title, link), comma-separated (simulator default 2000002,2000003,2000004).",
    )
    wechat_url: str = Field("", description="WeChat API base; empty = simulator or https://api.weixin.qq.com.")
    wechat_appid: str = Field("", description="WeChat official account appid.")
    wechat_secret: SecretStr | None = Field(None, description="WeChat appsecret.")
    wechat_template_id: str = Field("", description="WeChat template_id of MESSAGE_TEMPLATE.")
    wechat_callback_token: SecretStr | None = Field(
        None, description="Token that signs WeChat event pushes; required live. Unset in simulators mode: a random "
        "token per run, shared with the simulators the same process starts (the demo).",
    )
    wechat_encoding_aes_key: SecretStr | None = Field(
        None, description="WeChat EncodingAESKey (43 characters) for safe-mode (encrypt_type=aes) pushes; unset = plain mode only.",
    )
    callback_secret: SecretStr | None = Field(
        None, description="Secret path segment of the unsigned provider callbacks (Aliyun SmsReport/SmsUp, Tencent "
        "status/reply): /callbacks/aliyun/<secret>/…; at least 24 characters; required live. Unset in simulators "
        "mode: a random secret per run.",
    )
    callback_allow_sources: str = Field(
        "", description="Comma-separated networks (CIDR) the unsigned provider callbacks may come from; empty = any "
        "source (the secret path alone guards them).",
    )
    callback_window_s: float = Field(
        300.0, gt=0, description="How old a signed WeChat push's timestamp may be (either way) before it is refused as a replay.",
    )
    early_receipt_cap: int = Field(
        20000, ge=0, description="Most receipts kept while they match no delivery yet; past it a push is refused "
        "(the provider pushes again later) instead of filling the table.",
    )
    receipt_pull_s: float = Field(
        60.0, gt=0, description="Real seconds between pulls of Tencent receipts and replies and JPush delivery reports.",
    )
    jpush_url: str = Field("", description="JPush API base; empty = simulator or https://api.jpush.cn.")
    jpush_app_key: str = Field("", description="JPush appKey.")
    jpush_master_secret: SecretStr | None = Field(None, description="JPush masterSecret.")
    jpush_report_url: str = Field(
        "", description="JPush report API base (delivery reports); empty = the simulator (JPUSH_URL) or https://report.jpush.cn.",
    )
    provider_timeout_s: float = Field(5.0, gt=0, description="Seconds to wait for a provider's answer.")
    sms_rate_per_s: float = Field(100.0, gt=0, description="Most SMS API requests per second (a batch request carries up to 100).")
    wechat_rate_per_s: float = Field(500.0, gt=0, description="Most WeChat template sends per second.")
    app_rate_per_s: float = Field(10.0, gt=0, description="Most JPush push requests per second (each up to 1000 pushes).")
    jpush_batch_single: bool = Field(
        True,
        description="Send app pushes with JPush batch single push (up to 1000 personal pushes a request; a VIP "
        "feature). Off, or refused by JPush: one request per distinct text.",
    )
    sms_daily_quota: int = Field(0, ge=0, description="Most SMS per day (0 = no quota of ours).")
    wechat_daily_quota: int = Field(0, ge=0, description="Most WeChat messages per day (0 = no quota of ours).")
    app_daily_quota: int = Field(0, ge=0, description="Most app pushes per day (0 = no quota of ours).")
    public_base_url: str = Field(
        "",
        description="Public address of this service, used in the links of messages (`/p/<policy>?t=<signed token>`). "
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
    aliyun_code_template_code: str = Field(
        "", description="Aliyun TemplateCode of the sign-in code SMS, slots ${code} ${minutes} (simulator default SMS_900005)."
    )
    tencent_code_template_id: str = Field(
        "", description="Tencent TemplateId of the sign-in code SMS, slots {1} = code, {2} = minutes (simulator default 2000005)."
    )
    aliyun_bind_template_code: str = Field(
        "", description="Aliyun TemplateCode of the WeChat binding link SMS, slots ${link} (w/<code>, after the fixed short-link host) ${minutes} (simulator default SMS_900006)."
    )
    tencent_bind_template_id: str = Field(
        "", description="Tencent TemplateId of the WeChat binding link SMS, {1} = link, {2} = minutes (simulator default 2000006)."
    )
    wechat_oauth_url: str = Field(
        "https://open.weixin.qq.com",
        description="Where WeChat web authorisation (snsapi_base) starts; the binding link sends the person there.",
    )
    consent_text_version: str = Field(
        "2026-11-v1", description="Version of the consent wording the /me pages and the app show; recorded with each consent."
    )
    wechat_template_fields: str = Field(
        "thing1=title,time2=deadline,thing3=benefit,thing4=reason",
        description="WeChat template keys and the message field each shows (title, summary, reason, deadline, benefit, link).",
    )

    # -- intake: suggestions from text, source feeds, the review queue (policy_push.intake) ----
    intake_city: str = Field(
        "211100",
        description="Region code of the city policy texts are read in when their issuer or title names none: "
        "本市, 全区 and bare district names resolve inside it (Panjin by default).",
    )
    intake_min_confidence: float = Field(
        0.5, ge=0, le=1, description="Suggestions at or above this confidence are filled into the suggested record; "
        "the others are only listed.",
    )
    intake_sources: list[dict[str, Any]] = Field(
        [],
        description='Sources polled for new policies, as JSON (or [[intake_sources]] tables in the TOML file): '
        '[{"name": "pj-gov", "kind": "rss", "url": "https://…/rss.xml"}, {"name": "pj-rsj", "kind": "html", '
        '"url": "https://…/list.html", "links": "ul.list a", "title": "h1", "content": "div.article"}]. '
        "See docs/intake.md.",
    )
    intake_poll_interval_s: float = Field(900.0, gt=0, description="Seconds between polls of the intake sources.")
    intake_fetch_timeout_s: float = Field(20.0, gt=0, description="Seconds to wait for one page of a source.")
    intake_host_delay_s: float = Field(
        2.0, ge=0, description="Least seconds between two requests to one host (a robots.txt Crawl-delay may ask for more)."
    )
    intake_max_page_bytes: int = Field(5 * 1024 * 1024, ge=1024, description="Largest page fetched from a source.")
    intake_user_agent: str = Field(
        "policy_push-intake/0.1", description="User-Agent of the source fetcher (robots.txt rules are read for it)."
    )

    @model_validator(mode="after")
    def _idle_within_absolute(self) -> Settings:
        if self.staff_session_idle_minutes > self.staff_session_minutes:
            raise ValueError(
                f"staff_session_idle_minutes ({self.staff_session_idle_minutes}) must not exceed "
                f"staff_session_minutes ({self.staff_session_minutes}), the absolute limit of a staff login"
            )
        return self

    @field_validator("intake_sources")
    @classmethod
    def _intake_sources(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from policy_push.intake.sources.config import check_sources  # lazily: intake imports settings users

        check_sources(v)
        return v

    @field_validator("intake_city")
    @classmethod
    def _intake_city(cls, v: str) -> str:
        if not v.isdigit() or len(v) not in (6, 9):
            raise ValueError(f"intake_city must be a region code of 6 or 9 digits, got {v!r}")
        return v

    @field_validator("callback_secret")
    @classmethod
    def _callback_secret_long(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value() and len(value.get_secret_value()) < 24:
            raise ValueError("must be at least 24 characters (e.g. from `python -c 'import secrets; print(secrets.token_urlsafe(24))'`)")
        return value

    @field_validator("wechat_encoding_aes_key")
    @classmethod
    def _aes_key_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value() and len(value.get_secret_value()) != 43:
            raise ValueError("a WeChat EncodingAESKey has 43 characters")
        return value

    @field_validator("callback_allow_sources")
    @classmethod
    def _networks(cls, value: str) -> str:
        SourceAllowList.parse(value.split(","))  # a bad entry raises ValueError naming it
        return value

    @field_validator("sms_providers")
    @classmethod
    def _sms_providers(cls, v: str) -> str:
        names = [part.strip().lower() for part in v.split(",") if part.strip()]
        unknown = sorted(set(names) - {"aliyun", "tencent"})
        if unknown or not names or len(set(names)) != len(names):
            raise ValueError(f"sms_providers: a comma-separated list of distinct aliyun, tencent; got {v!r}")
        return ",".join(names)

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, v: str) -> str:
        level = v.strip().upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("local_timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not an IANA time zone; e.g. Asia/Shanghai") from None
        return v

    @field_validator("quiet_hours_by_channel")
    @classmethod
    def _quiet_hours_by_channel(cls, v: dict[str, str]) -> dict[str, str]:
        for channel, spec in v.items():
            if channel not in ("sms", "wechat", "app"):
                raise ValueError(f"unknown channel {channel!r}; the channels are sms, wechat, app")
            hours_range(spec)
        return v

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, v: str) -> str:
        if not v.strip():
            return ""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(v.strip())
        except ArgumentError:
            raise ValueError(
                "not a database URL; e.g. postgresql+asyncpg://user@127.0.0.1:5432/policy_push (or empty for SQLite)"
            ) from None
        if url.get_backend_name() not in ("postgresql", "sqlite"):
            raise ValueError(f"unsupported database {url.get_backend_name()!r}: use postgresql+asyncpg:// or sqlite+aiosqlite://")
        if url.get_backend_name() == "postgresql" and url.drivername not in ("postgresql", "postgres", "postgresql+asyncpg"):
            raise ValueError(f"driver {url.drivername!r} is not asynchronous: use postgresql+asyncpg://")
        if not url.database:
            raise ValueError("the URL names no database (…/DBNAME at its end)")
        return v.strip()

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


def hours_range(spec: str) -> tuple[time, time] | None:
    """``"21:00-08:00"`` -> (21:00, 08:00); empty -> None. The one parser of quiet hours."""
    spec = spec.strip()
    if not spec:
        return None
    m = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", spec)
    if m is None:
        raise ValueError(f"quiet hours {spec!r}: expected HH:MM-HH:MM, e.g. 21:00-08:00")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if max(h1, h2) > 23 or max(m1, m2) > 59:
        raise ValueError(f"quiet hours {spec!r}: hours run 00-23 and minutes 00-59, e.g. 21:00-08:00")
    return time(h1, m1), time(h2, m2)


def _check_config_file(path: str | Path) -> None:
    """A named config file must exist and parse: a typo must not silently fall back to the defaults."""
    from policy_push.errors import ConfigurationError

    file = Path(path)
    if not file.is_file():
        raise ConfigurationError(f"config file {str(file)!r} does not exist; fix --config or POLICY_PUSH_CONFIG")
    try:
        tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"config file {str(file)!r} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"config file {str(file)!r} cannot be read: {exc}") from None


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build settings; ``config_file`` names a TOML file (same keys as the fields, lower case)."""
    named = config_file if config_file is not None else os.environ.get("POLICY_PUSH_CONFIG")
    if named:
        _check_config_file(named)
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
