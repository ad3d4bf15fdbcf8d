"""Simulator configuration, read from ``EXCHANGE_SIM_*`` environment variables.

Every setting has a default so ``python -m services.exchange_sim`` runs with no environment at
all. A bad value stops the start with a message that names the variable.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "EXCHANGE_SIM_"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = ",".join(
    str(REPO_ROOT / "data" / name)
    for name in ("BTCUSDT_1m_2025-05-20_2025-05-27.csv.gz", "ETHUSDT_1m_2025-05-20_2025-05-27.csv.gz")
)


class ConfigError(ValueError):
    """A configuration value is invalid; the message starts with the variable name."""


class SimSettings(BaseSettings):
    """All knobs of the simulator; see docs/exchange_sim.md for the meaning of each."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(9100, ge=0, le=65535)
    api_key: str = Field("sim-key", min_length=1)
    api_secret: str = Field("sim-secret", min_length=1)
    data: str = DEFAULT_DATA
    speed: float = Field(1.0, gt=0, le=1_000_000)
    balances: str = "USDT=10000"
    history: int = Field(500, ge=0)
    start_ms: int | None = Field(None, ge=0)  # market time the replay starts at (None: the wall clock)
    seed: int = 0
    slippage_bps: Decimal = Field(Decimal(0), ge=0, le=10_000)
    market_depth_quote: Decimal = Field(Decimal(1_000_000), gt=0)
    maker_commission: Decimal = Field(Decimal("0.001"), ge=0, lt=1)
    taker_commission: Decimal = Field(Decimal("0.001"), ge=0, lt=1)
    maker_fill_quote: Decimal = Field(Decimal(0), ge=0)  # > 0: quote a resting order fills per walk step
    state_file: Path | None = None
    weight_limit: int = Field(6000, gt=0)
    order_limit_10s: int = Field(100, gt=0)
    ping_interval: float = Field(20.0, gt=0)
    scale_symbols: int = Field(0, ge=0, le=5000)  # > 0: this many re-based symbols from the data files

    @field_validator("start_ms", mode="before")
    @classmethod
    def _empty_start(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("state_file", mode="before")
    @classmethod
    def _empty_state_file(cls, value: object) -> object:
        return None if value in ("", None) else value

    @field_validator("data")
    @classmethod
    def _check_data(cls, value: str) -> str:
        paths = [part.strip() for part in value.split(",") if part.strip()]
        if not paths:
            # An empty value (as in .env.example) means the bundled candles.
            return DEFAULT_DATA
        missing = [p for p in paths if not Path(p).exists()]
        if missing:
            raise ValueError(f"file not found: {', '.join(missing)}")
        return ",".join(paths)

    @field_validator("balances")
    @classmethod
    def _check_balances(cls, value: str) -> str:
        parse_balances(value)
        return value

    @property
    def data_paths(self) -> list[Path]:
        """The candle files (CSV, Parquet) and Parquet series folders to replay, in the order given."""
        return [Path(part) for part in self.data.split(",")]

    @property
    def starting_balances(self) -> dict[str, Decimal]:
        """Parsed ``EXCHANGE_SIM_BALANCES``."""
        return parse_balances(self.balances)


def parse_balances(text: str) -> dict[str, Decimal]:
    """Parse ``USDT=10000,BTC=0.5`` into ``{"USDT": Decimal("10000"), "BTC": Decimal("0.5")}``."""
    result: dict[str, Decimal] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        asset, sep, amount = part.partition("=")
        asset = asset.strip().upper()
        if not sep or not asset.isalnum():
            raise ValueError(f"expected ASSET=AMOUNT pairs separated by commas, got {part!r}")
        try:
            value = Decimal(amount.strip())
        except InvalidOperation:
            raise ValueError(f"amount for {asset} is not a number: {amount!r}") from None
        if not value.is_finite() or value < 0:
            raise ValueError(f"amount for {asset} must be a non-negative number")
        result[asset] = value
    return result


def load_settings() -> SimSettings:
    """Read the environment; raise ConfigError naming the first bad variable."""
    try:
        return SimSettings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            problems.append(f"{ENV_PREFIX}{field.upper()}: {error['msg']}")
        raise ConfigError("; ".join(problems)) from None
