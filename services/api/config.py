"""Settings of the api (dashboard backend), read from the environment and ``.env``."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from shared.settings import ParameterSettings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BACKTEST_DATA = PROJECT_ROOT / "data" / "BTCUSDT_1m_2025-05-20_2025-05-27.csv.gz"


class ApiSettings(ParameterSettings):
    """Where to listen, how to sign in, where the ledger and reports are, SSE limits.

    It extends the parameter settings so the api shows the same start-up parameter set as
    the strategy and the executor while nothing has been changed from the dashboard yet.
    """

    api_host: str = Field("127.0.0.1", alias="API_HOST")
    api_port: int = Field(8000, alias="API_PORT", ge=1, le=65535)
    dashboard_password: SecretStr | None = Field(None, alias="DASHBOARD_PASSWORD")
    api_cors_origins: str = Field("", alias="API_CORS_ORIGINS")
    database_url: str = Field("sqlite:///var/bot.sqlite3", alias="DATABASE_URL")
    reports_dir: Path = Field(Path("var/reports"), alias="REPORTS_DIR")
    backtest_data: Path = Field(DEFAULT_BACKTEST_DATA, alias="BACKTEST_DATA")
    backtest_timeout_s: int = Field(900, alias="BACKTEST_TIMEOUT_S", ge=10)
    # Where python -m backtest.optimize leaves each study's <name>.json and .html (its --report-dir).
    optimize_reports_dir: Path = Field(Path("var/optimize/reports"), alias="OPTIMIZE_REPORT_DIR")
    # A study started from the dashboard is stopped after this long.
    optimize_timeout_s: int = Field(4 * 3600, alias="OPTIMIZE_TIMEOUT_S", ge=10)
    # Its process and its LocalCluster's workers run this much below the api's CPU priority.
    optimize_nice: int = Field(10, alias="OPTIMIZE_NICE", ge=0, le=19)
    frontend_dir: Path = Field(PROJECT_ROOT / "frontend", alias="FRONTEND_DIR")
    # The executor's circuit breaker limits (its variables): the backtest panel applies them too,
    # as the CLI's BREAKER_* parameters, which check them (a bad one fails the run, named).
    breaker_daily_loss_pct: str = Field("", alias="BREAKER_DAILY_LOSS_PCT")
    breaker_max_drawdown_pct: str = Field("", alias="BREAKER_MAX_DRAWDOWN_PCT")
    breaker_max_losing_streak: str = Field("", alias="BREAKER_MAX_LOSING_STREAK")
    # Who holds the levels live (the executor's variables): the backtest panel models the same
    # (PROTECTION=exchange: the OCO's legs fill, not the bot's watch).
    protection: str = Field("", alias="PROTECTION")
    stop_limit_offset: str = Field("", alias="STOP_LIMIT_OFFSET")

    session_ttl_s: int = Field(12 * 3600, alias="SESSION_TTL_S", ge=60)
    session_cookie_secure: bool = Field(False, alias="SESSION_COOKIE_SECURE")
    login_free_attempts: int = Field(3, alias="LOGIN_FREE_ATTEMPTS", ge=1)
    login_max_delay_s: int = Field(300, alias="LOGIN_MAX_DELAY_S", ge=1)
    login_global_failures: int = Field(5, alias="LOGIN_GLOBAL_FAILURES", ge=1)
    login_global_window_s: int = Field(60, alias="LOGIN_GLOBAL_WINDOW_S", ge=1)
    login_device_ttl_s: int = Field(90 * 86400, alias="LOGIN_DEVICE_TTL_S", ge=3600)
    forwarded_allow_ips: str = Field("", alias="FORWARDED_ALLOW_IPS")

    max_body_bytes: int = Field(64 * 1024, alias="API_MAX_BODY_BYTES", ge=1024)
    max_concurrency: int = Field(64, alias="API_MAX_CONCURRENCY", ge=1)
    sse_max_clients: int = Field(200, alias="SSE_MAX_CLIENTS", ge=1)
    sse_max_stream_s: float = Field(0, alias="SSE_MAX_STREAM_S", ge=0)

    sse_queue_size: int = Field(500, alias="SSE_QUEUE_SIZE", ge=1)
    sse_backlog_limit: int = Field(1000, alias="SSE_BACKLOG_LIMIT", ge=1)
    sse_price_interval_ms: int = Field(500, alias="SSE_PRICE_INTERVAL_MS", ge=0)
    sse_retry_ms: int = Field(2000, alias="SSE_RETRY_MS", ge=100)

    @field_validator("dashboard_password")
    @classmethod
    def _check_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or value.get_secret_value() == "":
            return None
        if len(value.get_secret_value()) < 8:
            raise ValueError("must be at least 8 characters (or unset to have one generated)")
        return value

    @field_validator("api_cors_origins")
    @classmethod
    def _check_cors(cls, value: str) -> str:
        for origin in (part.strip() for part in value.split(",")):
            if origin == "*":
                # The session cookie is sent with credentials: a wildcard would let any site act.
                raise ValueError("'*' cannot be combined with credentials (the session cookie); list the origins")
            if origin and not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError(f"{origin!r} is not an origin like https://desk.example or http://127.0.0.1:8080")
        return value

    @property
    def trusted_proxies(self) -> list[str]:
        """Addresses whose X-Forwarded-For / X-Forwarded-Proto are believed (none by default)."""
        return [address.strip() for address in self.forwarded_allow_ips.split(",") if address.strip()]

    @property
    def cors_origins(self) -> list[str]:
        """Origins allowed to call the api from another site; empty means no CORS at all."""
        return [origin.strip().rstrip("/") for origin in self.api_cors_origins.split(",") if origin.strip()]
