"""Settings of the executor, read from the environment and ``.env``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.settings import TIMEFRAME_MS, ParameterSettings

BotStateName = Literal["running", "stopped", "entries_paused", "error"]


class ExecutorSettings(ParameterSettings):
    """Where the ledger lives, how old data may be, and how orders are retried and settled."""

    database_url: str = Field("sqlite:///var/bot.sqlite3", alias="DATABASE_URL")
    max_data_age_s: float = Field(30.0, gt=0, alias="MAX_DATA_AGE_S")
    signal_max_age_s: float = Field(30.0, gt=0, alias="SIGNAL_MAX_AGE_S")
    bot_start_state: BotStateName = Field("running", alias="BOT_START_STATE")
    order_timeout_s: float = Field(10.0, gt=0, alias="ORDER_TIMEOUT_S")
    order_send_attempts: int = Field(3, ge=1, le=10, alias="ORDER_SEND_ATTEMPTS")
    order_query_attempts: int = Field(5, ge=1, le=50, alias="ORDER_QUERY_ATTEMPTS")
    order_query_delay_s: float = Field(1.0, ge=0, alias="ORDER_QUERY_DELAY_S")
    max_retry_after_wait_s: float = Field(10.0, ge=0, alias="MAX_RETRY_AFTER_WAIT_S")
    intent_grace_s: float = Field(15.0, ge=0, alias="INTENT_GRACE_S")
    exit_retry_s: float = Field(10.0, ge=0, alias="EXIT_RETRY_S")
    reconcile_interval_s: float = Field(30.0, gt=0, alias="RECONCILE_INTERVAL_S")
    lease_ttl_ms: int = Field(5_000, ge=1000, alias="LEASE_TTL_MS")
    poll_block_ms: int = Field(500, ge=10, le=10_000, alias="EXECUTOR_POLL_MS")

    @property
    def interval_ms(self) -> int:
        """Length of one candle of ``TIMEFRAME`` in ms."""
        return TIMEFRAME_MS[self.timeframe]
