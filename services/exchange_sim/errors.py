"""Binance error codes and their exact messages (errors.md), raised as ApiError."""

from __future__ import annotations

DECIMAL_RANGE = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
LONG_RANGE = r"^[0-9]{1,20}$"
CLIENT_ID_RANGE = r"^[a-zA-Z0-9-_]{1,36}$"
SYMBOLS_RANGE = r'^\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\]$'


class ApiError(Exception):
    """An error answered as ``{"code": code, "msg": msg}`` with an HTTP status."""

    def __init__(
        self,
        code: int,
        msg: str,
        status: int = 400,
        headers: dict[str, str] | None = None,
        data: dict[str, object] | None = None,
    ) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.status = status
        self.headers = headers or {}
        self.data = data  # the ``data`` of a cancel-replace answer (-2021 / -2022)

    def body(self) -> dict[str, object]:
        """The JSON error body."""
        if self.data is not None:
            return {"code": self.code, "msg": self.msg, "data": self.data}
        return {"code": self.code, "msg": self.msg}


def mandatory(name: str) -> ApiError:
    return ApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def either_mandatory(first: str, second: str) -> ApiError:
    return ApiError(-1102, f"Param '{first}' or '{second}' must be sent, but both were empty/null!")


def too_large(name: str, limit: int) -> ApiError:
    return ApiError(-1102, f"'{name}' contains unexpected value. Cannot be greater than {limit}.")


def not_required(name: str) -> ApiError:
    return ApiError(-1106, f"Parameter '{name}' sent when not required.")


def illegal_chars(name: str, legal: str) -> ApiError:
    return ApiError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.")


def duplicate_param() -> ApiError:
    return ApiError(-1101, "Duplicate values for a parameter detected.")


def too_much_precision(name: str) -> ApiError:
    return ApiError(-1111, f"Parameter '{name}' has too much precision.")


def invalid_value(name: str) -> ApiError:
    return ApiError(-1130, f"Data sent for parameter '{name}' is not valid.")


def bad_symbol() -> ApiError:
    return ApiError(-1121, "Invalid symbol.")


def bad_interval() -> ApiError:
    return ApiError(-1120, "Invalid interval.")


def bad_combo() -> ApiError:
    return ApiError(-1128, "Combination of optional parameters invalid.")


def lookup_too_long(hours: int = 24) -> ApiError:
    return ApiError(-1127, f"More than {hours} hours between startTime and endTime.")


def filter_failure(name: str) -> ApiError:
    return ApiError(-1013, f"Filter failure: {name}")


def order_rejected(msg: str) -> ApiError:
    return ApiError(-2010, msg)


INSUFFICIENT_BALANCE = "Account has insufficient balance for requested action."
DUPLICATE_ORDER = "Duplicate order sent."
WOULD_MATCH = "Order would immediately match and take."
WOULD_TRIGGER = "Order would trigger immediately."
BAD_OCO_PRICES = "The relationship of the prices for the orders is not correct."


def unknown_order() -> ApiError:
    return ApiError(-2011, "Unknown order sent.")


def no_such_order() -> ApiError:
    return ApiError(-2013, "Order does not exist.")


def client_id_mismatch() -> ApiError:
    return ApiError(-2039, "Client order ID is not correct for this order ID.")


def bad_api_key_format() -> ApiError:
    return ApiError(-2014, "API-key format invalid.", status=401)


def rejected_api_key() -> ApiError:
    return ApiError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)


def bad_signature() -> ApiError:
    return ApiError(-1022, "Signature for this request is not valid.")


def timestamp_outside_window() -> ApiError:
    return ApiError(-1021, "Timestamp for this request is outside of the recvWindow.")


def timestamp_ahead() -> ApiError:
    return ApiError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")


def bad_side() -> ApiError:
    return ApiError(-1117, "Invalid side.")


def bad_order_type() -> ApiError:
    return ApiError(-1116, "Invalid orderType.")


def bad_time_in_force() -> ApiError:
    return ApiError(-1115, "Invalid timeInForce.")


def unsupported() -> ApiError:
    return ApiError(-1020, "This operation is not supported.")


def too_much_weight(limit: int, retry_after: int) -> ApiError:
    msg = (
        f"Too much request weight used; current limit is {limit} request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API."
    )
    return ApiError(-1003, msg, status=429, headers={"Retry-After": str(retry_after)})


def ip_banned(until_ms: int, retry_after: int) -> ApiError:
    msg = (
        f"Way too much request weight used; IP banned until {until_ms}. "
        "Please use WebSocket Streams for live updates to avoid bans."
    )
    return ApiError(-1003, msg, status=418, headers={"Retry-After": str(retry_after)})


def too_many_orders(limit: int, retry_after: int) -> ApiError:
    msg = f"Too many new orders; current limit is {limit} orders per 10 SECOND."
    return ApiError(-1015, msg, status=429, headers={"Retry-After": str(retry_after)})


def internal_error(status: int) -> ApiError:
    return ApiError(-1001, "Internal error; unable to process your request. Please try again.", status=status)


def unknown_outcome(status: int) -> ApiError:
    msg = "Timeout waiting for response from backend server. Send status unknown; execution status unknown."
    return ApiError(-1007, msg, status=status)
