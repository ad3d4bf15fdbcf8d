"""Settings of the executor, read from the environment and ``.env``."""

from __future__ import annotations

import logging
from decimal import Decimal

from pydantic import Field, field_validator, model_validator

from shared.intervals import INTERVAL_MS
from shared.settings import ParameterSettings
from shared.trading.breaker import BreakerLimits
from shared.trading.vocabulary import BotState, ProtectionMode

logger = logging.getLogger(__name__)


class ExecutorSettings(ParameterSettings):
    """Where the ledger lives, how old data may be, and how orders are retried and settled.

    Ages that decide trades are market time (candles, market ms against ``market:clock``), so a
    replay at any speed decides as at 1x; wall-clock seconds bound only I/O (the market feed's
    silence, HTTP timeouts, how long an order request can still be accepted).
    """

    database_url: str = Field("sqlite:///var/bot.sqlite3", alias="DATABASE_URL")
    signal_max_age_candles: float = Field(1.0, gt=0, alias="SIGNAL_MAX_AGE_CANDLES")
    max_data_age_ms: int = Field(30_000, gt=0, alias="MAX_DATA_AGE_MS")
    # A feed silent this long (wall clock) is down: its market clock says nothing about the
    # present, so no entry. Not market_data's reconnect watchdog (MARKET_STALE_AFTER_S): that
    # one is tuned to reconnect early, this one to when acting on the clock stops being safe.
    entry_max_feed_silence_s: float = Field(10.0, gt=0, alias="ENTRY_MAX_FEED_SILENCE_S")
    # Older names, read as market seconds; refused together with their replacements.
    signal_max_age_s: float | None = Field(None, gt=0, alias="SIGNAL_MAX_AGE_S")
    max_data_age_s: float | None = Field(None, gt=0, alias="MAX_DATA_AGE_S")
    # Where stop-loss and take-profit are watched: ticks in the bot, or an OCO on the exchange.
    protection: ProtectionMode = Field(ProtectionMode.BOT, alias="PROTECTION")
    # A STOP_LOSS_LIMIT leg's limit this fraction below its stop (used only where the symbol
    # does not take STOP_LOSS, which sells at market once triggered).
    stop_limit_offset: Decimal = Field(Decimal("0.005"), gt=0, lt=Decimal("0.5"), alias="STOP_LIMIT_OFFSET")
    bot_start_state: BotState = Field(BotState.RUNNING, alias="BOT_START_STATE")
    order_timeout_s: float = Field(10.0, gt=0, alias="ORDER_TIMEOUT_S")
    order_send_attempts: int = Field(3, ge=1, le=10, alias="ORDER_SEND_ATTEMPTS")
    order_query_attempts: int = Field(5, ge=1, le=50, alias="ORDER_QUERY_ATTEMPTS")
    order_query_delay_s: float = Field(1.0, ge=0, alias="ORDER_QUERY_DELAY_S")
    max_retry_after_wait_s: float = Field(10.0, ge=0, alias="MAX_RETRY_AFTER_WAIT_S")
    intent_grace_s: float = Field(10.0, ge=0, alias="INTENT_GRACE_S")
    exit_retry_s: float = Field(10.0, ge=0, alias="EXIT_RETRY_S")
    reconcile_interval_s: float = Field(30.0, gt=0, alias="RECONCILE_INTERVAL_S")
    lease_ttl_ms: int = Field(5_000, ge=1000, alias="LEASE_TTL_MS")
    poll_block_ms: int = Field(500, ge=10, le=10_000, alias="EXECUTOR_POLL_MS")
    # The account circuit breaker (shared.trading.breaker); each limit is off when unset.
    breaker_daily_loss_pct: Decimal | None = Field(None, gt=0, lt=100, alias="BREAKER_DAILY_LOSS_PCT")
    breaker_max_drawdown_pct: Decimal | None = Field(None, gt=0, lt=100, alias="BREAKER_MAX_DRAWDOWN_PCT")
    breaker_max_losing_streak: int | None = Field(None, ge=1, alias="BREAKER_MAX_LOSING_STREAK")

    @field_validator("breaker_daily_loss_pct", "breaker_max_drawdown_pct", "breaker_max_losing_streak", mode="before")
    @classmethod
    def _empty_is_off(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    def breaker_limits(self) -> BreakerLimits:
        """The circuit breaker's limits in force."""
        return BreakerLimits(self.breaker_daily_loss_pct, self.breaker_max_drawdown_pct, self.breaker_max_losing_streak)

    @model_validator(mode="after")
    def _read_older_names(self) -> ExecutorSettings:
        for old, new, field in (
            ("SIGNAL_MAX_AGE_S", "SIGNAL_MAX_AGE_CANDLES", "signal_max_age_candles"),
            ("MAX_DATA_AGE_S", "MAX_DATA_AGE_MS", "max_data_age_ms"),
        ):
            value = getattr(self, old.lower())
            if value is None:
                continue
            if field in self.model_fields_set:
                raise ValueError(f"{old} is replaced by {new} (market time); set only {new}")
            logger.warning("%s=%g is read as market seconds; use %s instead", old, value, new)
        if self.signal_max_age_s is not None:
            self.signal_max_age_candles = self.signal_max_age_s * 1000 / self.interval_ms
        if self.max_data_age_s is not None:
            self.max_data_age_ms = int(self.max_data_age_s * 1000)
        return self

    @property
    def signal_max_age_ms(self) -> int:
        """How long after its candle's close (market time) a BUY may still be acted on: its allowance."""
        return int(self.signal_max_age_candles * self.interval_ms)

    @property
    def interval_ms(self) -> int:
        """Length of one candle of ``TIMEFRAME`` in ms."""
        return INTERVAL_MS[self.timeframe]
