"""Settings common to every service, read from the environment and ``.env``.

Each service subclasses ``ServiceSettings``; ``load_settings`` turns a validation error into
one message per offending variable and exits, so a bad configuration never half-starts.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, ValidationError, create_model, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.intervals import INTERVAL_MS, INTERVALS
from shared.parameters import History, ParameterError, StrategyParameters

DEFAULT_STRATEGY_NAME = (
    "ema_cross_rsi"  # shared.trading.strategies.DEFAULT_STRATEGY, without importing the registry here
)

BINANCE_URLS = {
    "testnet": {
        "rest": "https://testnet.binance.vision",
        "streams": "wss://stream.testnet.binance.vision",
        "ws_api": "wss://ws-api.testnet.binance.vision/ws-api/v3",
    },
    "live": {
        "rest": "https://api.binance.com",
        "streams": "wss://stream.binance.com:9443",
        "ws_api": "wss://ws-api.binance.com:443/ws-api/v3",
    },
}


class ServiceSettings(BaseSettings):
    """What every service needs: Redis, logging, the market it trades and how to reach it."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    redis_url: str = Field("redis://127.0.0.1:6379/0", alias="REDIS_URL")
    # This service's own Redis user (shared.redis_acl); the password file is how compose
    # secrets reach a container. Unset: REDIS_URL as given (a plain Redis, or credentials in it).
    redis_username: str = Field("", alias="REDIS_USERNAME")
    redis_password_file: str = Field("", alias="REDIS_PASSWORD_FILE")
    # The deployment key sealing money-moving entries (shared.signing); never stored in Redis.
    bus_signing_key: SecretStr | None = Field(None, alias="BUS_SIGNING_KEY")
    bus_signing_key_file: str = Field("", alias="BUS_SIGNING_KEY_FILE")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", alias="LOG_LEVEL")
    instance_id: str = Field("", alias="INSTANCE_ID")
    # Prometheus /metrics of each service (shared.metrics): loopback unless told otherwise
    # (compose sets 0.0.0.0 inside its network); port 0 is off.
    metrics_host: str = Field("127.0.0.1", alias="METRICS_HOST")
    market_data_metrics_port: int = Field(9101, alias="MARKET_DATA_METRICS_PORT", ge=0, le=65535)
    strategy_metrics_port: int = Field(9102, alias="STRATEGY_METRICS_PORT", ge=0, le=65535)
    executor_metrics_port: int = Field(9103, alias="EXECUTOR_METRICS_PORT", ge=0, le=65535)
    notifier_metrics_port: int = Field(9104, alias="NOTIFIER_METRICS_PORT", ge=0, le=65535)
    api_metrics_port: int = Field(0, alias="API_METRICS_PORT", ge=0, le=65535)

    binance_env: Literal["sim", "testnet", "live"] = Field("sim", alias="BINANCE_ENV")
    binance_api_key: SecretStr | None = Field(None, alias="BINANCE_API_KEY")
    binance_api_secret: SecretStr | None = Field(None, alias="BINANCE_API_SECRET")
    live_trading_confirmed: str = Field("", alias="LIVE_TRADING_CONFIRMED")
    sim_url: str = Field("http://127.0.0.1:9100", alias="SIM_URL")

    # This service's share of the exchange's 6,000 request weight per minute (shared.request_weight):
    # market_data and the executor each take half by default.
    request_weight_share: int = Field(3000, alias="REQUEST_WEIGHT_SHARE", gt=0, le=6000)

    symbol: str = Field("BTCUSDT", alias="SYMBOL")
    symbols_csv: str = Field("", alias="SYMBOLS")
    timeframe: str = Field("1m", alias="TIMEFRAME")

    @field_validator("timeframe")
    @classmethod
    def _check_timeframe(cls, value: str) -> str:
        if value not in INTERVAL_MS:
            raise ValueError(f"must be one of {', '.join(INTERVALS)}")
        return value

    @field_validator("symbol")
    @classmethod
    def _check_symbol(cls, value: str) -> str:
        return _normalise_symbol(value)

    @field_validator("symbols_csv")
    @classmethod
    def _check_symbols(cls, value: str) -> str:
        return ",".join(_normalise_symbol(s) for s in value.split(",") if s.strip())

    @model_validator(mode="after")
    def _bus_credentials(self) -> ServiceSettings:
        if self.redis_password_file:
            from shared.redis_acl import url_with_credentials

            path = Path(self.redis_password_file)
            if not path.is_file():
                raise ValueError(f"REDIS_PASSWORD_FILE: {path} does not exist")
            self.redis_url = url_with_credentials(
                self.redis_url, self.redis_username or "default", path.read_text().strip()
            )
        self.signing_key()  # a bad key stops the service at start, naming the variable
        return self

    def signing_key(self) -> bytes | None:
        """The bus key from ``BUS_SIGNING_KEY`` or ``BUS_SIGNING_KEY_FILE`` (None when neither is set)."""
        from shared.signing import read_key

        value = self.bus_signing_key.get_secret_value() if self.bus_signing_key else None
        return read_key(value, self.bus_signing_key_file or None)

    @model_validator(mode="after")
    def _check_environment(self) -> ServiceSettings:
        if self.binance_env == "live" and self.live_trading_confirmed != "I_UNDERSTAND_THE_RISK":
            raise ValueError("LIVE_TRADING_CONFIRMED must be I_UNDERSTAND_THE_RISK when BINANCE_ENV=live (real money)")
        return self

    @property
    def symbols(self) -> list[str]:
        """Every traded symbol: ``SYMBOLS`` when set, else ``SYMBOL``."""
        return self.symbols_csv.split(",") if self.symbols_csv else [self.symbol]

    def metrics_port(self, service: str) -> int:
        """The ``<SERVICE>_METRICS_PORT`` of ``service`` (0: no metrics endpoint)."""
        return int(getattr(self, f"{service}_metrics_port", 0))

    @property
    def interval_ms(self) -> int:
        """Length of one candle of ``TIMEFRAME`` in ms."""
        return INTERVAL_MS[self.timeframe]

    def binance_urls(self) -> dict[str, str]:
        """REST, market-stream and WebSocket-API base URLs for ``BINANCE_ENV``."""
        if self.binance_env == "sim":
            base = self.sim_url.rstrip("/")
            ws = "ws" + base[len("http") :]
            return {"rest": base, "streams": ws, "ws_api": f"{ws}/ws-api/v3"}
        return BINANCE_URLS[self.binance_env]

    def binance_credentials(self) -> tuple[str, str]:
        """API key and secret; in ``sim`` mode the simulator's defaults apply when unset."""
        key = self.binance_api_key.get_secret_value() if self.binance_api_key else ""
        secret = self.binance_api_secret.get_secret_value() if self.binance_api_secret else ""
        if self.binance_env == "sim":
            return key or "sim-key", secret or "sim-secret"
        if not key or not secret:
            raise ValueError(f"BINANCE_API_KEY and BINANCE_API_SECRET are required when BINANCE_ENV={self.binance_env}")
        return key, secret


def warmup_candles_field() -> Any:
    """``WARMUP_CANDLES``: closed candles market_data back-fills at first start (one definition)."""
    return Field(1000, alias="WARMUP_CANDLES", ge=50, le=5000)


def _parameter_fields() -> type[ServiceSettings]:
    """``ServiceSettings`` plus one optional text field per ``StrategyParameters`` field, read
    from the variable of the same name: the parameter list is written once, in the model."""
    fields: dict[str, Any] = dict.fromkeys(StrategyParameters.model_fields, (str | None, None))
    return create_model("ParameterVariables", __base__=ServiceSettings, __module__=__name__, **fields)


if TYPE_CHECKING:
    # A class made at run time is no base a type checker can follow; the fields are only read
    # by name (``initial_parameters``).
    _ParameterVariables = ServiceSettings
else:
    _ParameterVariables = _parameter_fields()


class ParameterSettings(_ParameterVariables):
    """Services that need the strategy/risk parameters' start-up values from the environment
    (``EMA_SHORT_PERIOD``... as text, validated as a set), and the history they are validated
    against (a period longer than it never warms up)."""

    # At most what a symbol's kline stream keeps (its MAXLEN): the window is rebuilt from it.
    window_candles: int = Field(1000, alias="STRATEGY_WINDOW_CANDLES", ge=100, le=2_000)
    warmup_candles: int = warmup_candles_field()
    # The strategy of every symbol, its folder of user strategies, and its parameters when it is
    # not ema_cross_rsi (whose parameters are the variables above, changeable live).
    strategy_name: str = Field("ema_cross_rsi", alias="STRATEGY")
    strategy_path: str = Field("", alias="STRATEGY_PATH")
    strategy_params_text: str = Field("", alias="STRATEGY_PARAMS")
    # Per-symbol choice, ``BTCUSDT:ema_cross_rsi,ETHUSDT:rsi2_reversion``; unlisted symbols run STRATEGY.
    strategies_csv: str = Field("", alias="STRATEGIES")

    @model_validator(mode="after")
    def _check_parameters(self) -> ParameterSettings:
        self.initial_parameters()
        self.strategy_parameters()  # loads STRATEGY_PATH: a broken file stops the start, named
        self.initial_sets()
        return self

    def strategy_names(self) -> dict[str, str]:
        """Each traded symbol's strategy: its ``STRATEGIES`` entry, else ``STRATEGY``."""
        cached = self.__dict__.get("_strategy_names")
        if cached is not None:
            return dict(cached)
        names = dict.fromkeys(self.symbols, self.strategy_name)
        registry = self.strategy_registry()
        for token in (t.strip() for t in self.strategies_csv.split(",")):
            if not token:
                continue
            symbol, sep, name = (part.strip() for part in token.partition(":"))
            if not sep or not symbol or not name:
                raise ValueError(f"STRATEGIES: {token!r} is not SYMBOL:strategy")
            symbol = symbol.upper()
            if symbol not in names:
                raise ValueError(
                    f"STRATEGIES: {symbol} is not a traded symbol (SYMBOL/SYMBOLS: {', '.join(self.symbols)})"
                )
            if name not in registry:
                raise ValueError(
                    f"STRATEGIES: unknown strategy {name!r} for {symbol}; known: {', '.join(registry.names())}"
                )
            names[symbol] = name
        self.__dict__["_strategy_names"] = names
        return dict(names)

    def initial_sets(self) -> dict[str, Any]:
        """Each symbol's start parameter set (``shared.parameter_sets.SymbolSet``, version 0): its
        strategy's start values (``strategy_parameters()`` for STRATEGY, defaults for another) with
        the executor's fields from the environment."""
        from shared.parameter_sets import SymbolSet, executor_fields, validate_set

        cached = self.__dict__.get("_initial_sets")
        if cached is not None:
            return dict(cached)
        base = self.initial_parameters()
        risk = {name: getattr(base, name) for name in executor_fields()}
        sets = {}
        for symbol, name in self.strategy_names().items():
            strategy = self.strategy_registry().get(name)
            if name == DEFAULT_STRATEGY_NAME:
                parameters = base
            else:
                own = self.strategy_parameters() if name == self.strategy_name else strategy.parameters()
                try:
                    parameters = validate_set(strategy, {**own.model_dump(), **risk}, history=self.history())
                except ParameterError as e:
                    raise ValueError(f"STRATEGIES: {symbol} {name}: {e}") from e
            sets[symbol] = SymbolSet(symbol, name, 0, parameters)
        self.__dict__["_initial_sets"] = sets
        return dict(sets)

    def strategy_registry(self) -> Any:
        """Built-in and user strategies (``shared.trading.strategies.Registry``), loaded once."""
        from shared.strategy_loader import load_registry

        cached = self.__dict__.get("_registry")
        if cached is None:
            cached = load_registry(self.strategy_path or None)
            self.__dict__["_registry"] = cached
        return cached

    def strategy(self) -> Any:
        """The ``Strategy`` named by ``STRATEGY``."""
        try:
            return self.strategy_registry().get(self.strategy_name)
        except KeyError as e:
            raise ValueError(f"STRATEGY: {e.args[0]}") from None

    def strategy_parameters(self) -> Any:
        """The strategy's parameters: ``initial_parameters()`` for ema_cross_rsi, else ``STRATEGY_PARAMS``."""
        from shared.strategy_parameters import strategy_parameters

        strategy = self.strategy()
        try:
            parameters = strategy_parameters(strategy, self.strategy_params_text, self.initial_parameters())
        except ParameterError as e:
            raise ValueError(f"STRATEGY_PARAMS: {e}") from e
        # As History does for ema_cross_rsi: a warm-up longer than the candles ever seen never ends.
        limit = min(self.window_candles, self.warmup_candles)
        if strategy.warmup_candles(parameters) > limit:
            raise ValueError(
                f"STRATEGY_PARAMS: {strategy.name} needs {strategy.warmup_candles(parameters)} closed "
                f"candles, more than the {limit} of STRATEGY_WINDOW_CANDLES / WARMUP_CANDLES: "
                "the bot would stay warming up and never trade"
            )
        return parameters

    def initial_parameters(self) -> StrategyParameters:
        """The parameter set given by the environment (defaults for what is unset)."""
        from shared.parameters import validate_parameters

        values = {
            name: getattr(self, name) for name in StrategyParameters.model_fields if getattr(self, name) is not None
        }
        try:
            return validate_parameters(values, history=self.history())
        except ParameterError as e:
            raise ValueError(str(e)) from e

    def history(self) -> History:
        """The candles a parameter set may ask for."""
        return History(window_candles=self.window_candles, backfill_candles=self.warmup_candles)


def _normalise_symbol(value: str) -> str:
    symbol = value.strip().upper()
    if not symbol.isalnum() or not 5 <= len(symbol) <= 20:
        raise ValueError(f"{value!r} is not a Binance symbol such as BTCUSDT")
    return symbol


def load_settings[SettingsT: ServiceSettings](cls: type[SettingsT], **overrides: Any) -> SettingsT:
    """Build settings or exit with one line per invalid variable (never a traceback)."""
    try:
        return cls(**overrides)
    except ValidationError as e:
        print(format_settings_error(e), file=sys.stderr)
        raise SystemExit(2) from None


def format_settings_error(error: ValidationError) -> str:
    """'configuration error' followed by ``VARIABLE: reason`` lines."""
    lines = ["configuration error:"]
    for item in error.errors():
        variable = ".".join(str(part) for part in item["loc"]) or _variables_in(item["msg"])
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"  {variable or 'settings'}: {message}")
    return "\n".join(lines)


def _variables_in(message: str) -> str:
    names = [word.strip(":,") for word in message.split() if word.strip(":,").isupper() and "_" in word]
    return names[0] if names else ""
