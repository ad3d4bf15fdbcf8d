"""The exchange's answers the executor must tell apart, named by what the caller should do.

They are plain exceptions without I/O, so the decision core can reason about them and a fake
exchange in tests can raise them; ``services.executor.exchange`` maps Binance's errors onto them.
"""

from __future__ import annotations


class ExchangeError(Exception):
    """Base of the executor's exchange errors; ``code`` is Binance's error code when known."""

    code: int | None = None

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class RetryLater(ExchangeError):
    """Nothing happened; the same request may be made again later."""


class UnknownOutcome(ExchangeError):
    """An order request may or may not have executed; query it by client order id."""


class Rejected(ExchangeError):
    """The exchange refused the request; sending it again as is would fail the same way."""


class CredentialsRejected(Rejected):
    """The API key, its permissions or the signature were refused."""


class OrderNotFound(ExchangeError):
    """The queried order does not exist on the exchange (-2013)."""


class RateLimited(ExchangeError):
    """Too many requests (429) or banned (418): no request before ``retry_after_s``."""

    def __init__(self, message: str, code: int | None, retry_after_s: float) -> None:
        super().__init__(message, code)
        self.retry_after_s = retry_after_s


class ClockSkew(ExchangeError):
    """-1021: the request's timestamp was refused; the offset has been measured again."""
