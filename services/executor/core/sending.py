"""Sending one order under its client order id, as a state machine over the exchange's answers.

``on_reply`` takes the answer to a send (a FULL response or an ``ExchangeError``) and
``on_query`` the verdict of the queries that follow an unknown outcome; each returns the new
state, the effects, and what the shell does next: send again (same id), query, or stop. Only a
definite "does not exist" lets the same id be sent again, at most ``send_attempts`` sends; a
refusal before execution (429/418/-1003) waits for Retry-After and uses up no send. A
LIMIT_MAKER refused because it would take liquidity (-2010, the book moved between reading the
bid and sending) did not execute: it is priced again from a fresh bid and sent with the same id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from services.executor.core.effects import (
    Alert,
    ApplyAnswer,
    Effect,
    EnterError,
    MarkUnknown,
    RefreshSymbolInfo,
    RefuseOrder,
    SettleLater,
)
from services.executor.errors import (
    ClockSkew,
    CredentialsRejected,
    ExchangeError,
    OrderNotFound,
    RateLimited,
    Rejected,
    RetryLater,
    UnknownOutcome,
)
from shared.trading.limit_entry import is_would_match
from shared.trading.vocabulary import OrderStatus

MAX_REFUSALS = 10  # rate-limit refusals of one order (they do not use up send attempts)
SETTLE_THROTTLE_S = 2.0
REASON_LENGTH = 500


class Next(StrEnum):
    """What the shell does after a step."""

    SEND = "send"
    REPRICE = "reprice"  # a LIMIT_MAKER that would have taken: read the bid, send again
    QUERY = "query"
    DONE = "done"


class QueryOutcome(StrEnum):
    """What querying an order by its client id settled."""

    FOUND = "found"
    NOT_FOUND = "not_found"
    INCONCLUSIVE = "inconclusive"


class QueryStep(StrEnum):
    """What one query answer means: settled one way, ask again, or give up for now."""

    FOUND = "found"
    NOT_FOUND = "not_found"
    RETRY = "retry"
    INCONCLUSIVE = "inconclusive"
    TROUBLE = "trouble"  # an error worth reporting; inconclusive


@dataclass(frozen=True)
class SendPolicy:
    """Bounds of sending and settling (from the settings)."""

    send_attempts: int
    query_attempts: int
    max_retry_after_wait_s: float
    intent_grace_s: float


@dataclass(frozen=True)
class Sending:
    """One order being sent: sends made, rate-limit refusals in a row, and whether a request of
    it may have reached the exchange (then it can only be settled by query, never dropped)."""

    client_order_id: str
    sends: int = 0
    refusals: int = 0
    maybe_sent: bool = False
    maker: bool = False  # a LIMIT_MAKER (an entry with ENTRY_ORDER=limit_maker)

    def sent(self) -> Sending:
        """One more send is being made."""
        return replace(self, sends=self.sends + 1)


@dataclass(frozen=True)
class Step:
    state: Sending
    effects: tuple[Effect, ...]
    next: Next


SendReply = Mapping[str, Any] | RateLimited | ClockSkew | Rejected | UnknownOutcome


def on_reply(state: Sending, reply: SendReply, policy: SendPolicy) -> Step:
    """The exchange answered a send of the order (or refused it before execution)."""
    cid = state.client_order_id
    if isinstance(reply, RateLimited):
        state = replace(state, sends=state.sends - 1, refusals=state.refusals + 1)  # no send used up
        if state.refusals < MAX_REFUSALS and reply.retry_after_s <= policy.max_retry_after_wait_s:
            return Step(
                state,
                (Alert("warning", "rate_limited", f"order {cid} waits {reply.retry_after_s:g}s (Retry-After)"),),
                Next.SEND,
            )
        why = f"rate limited, retry after {reply.retry_after_s:g}s: {reply.message}"
        return Step(state, not_sent(state, why, policy, reply.code), Next.DONE)
    if isinstance(reply, ClockSkew):
        alert = Alert("warning", "clock_skew", f"order {cid}: clock offset measured again ({reply.message})")
        if state.sends < policy.send_attempts:
            return Step(state, (alert,), Next.SEND)
        return Step(state, (alert, RefuseOrder(reply.message, reply.code)), Next.DONE)
    if isinstance(reply, CredentialsRejected):
        return Step(
            state,
            (
                RefuseOrder(reply.message, reply.code, definite=True),
                EnterError(f"credentials refused by the exchange: {reply.message}"),
            ),
            Next.DONE,
        )
    if isinstance(reply, Rejected):
        if reply.code == -2010 and "duplicate" in reply.message.lower():
            return _unknown(state, reply)  # the id exists already: what became of it is asked
        if state.maker and is_would_match(reply.code, reply.message):
            if state.sends < policy.send_attempts:
                alert = Alert("info", "entry_repriced", f"order {cid} would have taken liquidity; priced again")
                return Step(state, (alert,), Next.REPRICE)
            why = f"LIMIT_MAKER would have taken liquidity at each of {state.sends} prices: {reply.message}"
            return Step(state, (RefuseOrder(why, reply.code, definite=True),), Next.DONE)
        refresh = (RefreshSymbolInfo(),) if reply.code == -1013 else ()
        return Step(state, (RefuseOrder(reply.message, reply.code, definite=True), *refresh), Next.DONE)
    if isinstance(reply, UnknownOutcome):
        return _unknown(replace(state, maybe_sent=True), reply)
    return Step(state, (ApplyAnswer(reply),), Next.DONE)


def _unknown(state: Sending, error: ExchangeError) -> Step:
    alert = Alert(
        "warning", "order_unknown", f"order {state.client_order_id} outcome unknown ({error.message}); querying it"
    )
    return Step(state, (MarkUnknown(error.message[:REASON_LENGTH]), alert), Next.QUERY)


def on_query(state: Sending, outcome: QueryOutcome, policy: SendPolicy) -> Step:
    """The queries after an unknown outcome settled ``outcome``."""
    cid = state.client_order_id
    if outcome is QueryOutcome.FOUND:
        return Step(state, (), Next.DONE)
    if outcome is QueryOutcome.NOT_FOUND:
        if state.sends < policy.send_attempts:
            alert = Alert(
                "warning", "order_resent", f"order {cid} did not reach the exchange; sending it again with the same id"
            )
            return Step(state, (alert,), Next.SEND)
        return Step(state, (RefuseOrder(f"not placed after {state.sends} attempts", None),), Next.DONE)
    alert = Alert(
        "error",
        "order_unsettled",
        f"outcome of order {cid} still unknown after {policy.query_attempts} queries; "
        "it is queried again before anything else is sent",
    )
    return Step(state, (alert, SettleLater(SETTLE_THROTTLE_S)), Next.DONE)


def not_sent(state: Sending, message: str, policy: SendPolicy, code: int | None = None) -> tuple[Effect, ...]:
    """Stop sending the order. When no request of it can have reached the exchange it is
    REJECTED now (its symbol is free at once); otherwise it is settled by query once no request
    carrying it can still be accepted."""
    if not state.maybe_sent:
        return (RefuseOrder(message, code),)
    alert = Alert("warning", "order_unsettled", f"order {state.client_order_id}: {message}; settled by query")
    return (alert, SettleLater(policy.intent_grace_s))


def query_step(reply: Mapping[str, Any] | ExchangeError, policy: SendPolicy) -> QueryStep:
    """What one answer to ``GET /api/v3/order`` means for the order's settling."""
    if isinstance(reply, OrderNotFound):
        return QueryStep.NOT_FOUND
    if isinstance(reply, RateLimited):
        return QueryStep.INCONCLUSIVE if reply.retry_after_s > policy.max_retry_after_wait_s else QueryStep.RETRY
    if isinstance(reply, (RetryLater, UnknownOutcome, ClockSkew)):
        return QueryStep.RETRY
    if isinstance(reply, ExchangeError):
        return QueryStep.TROUBLE
    return QueryStep.FOUND


def after_settling_query(status: str, outcome: QueryOutcome, age_s: float, policy: SendPolicy) -> tuple[Effect, ...]:
    """What follows one settling query of an unsettled order whose last send was ``age_s`` ago.

    A request older than its recvWindow can no longer be accepted: after the grace (counted
    from the last send) "not found" is final, and is settled right then.
    """
    if outcome is QueryOutcome.INCONCLUSIVE:
        return (SettleLater(SETTLE_THROTTLE_S),)  # asked again soon, ticks or not
    if outcome is QueryOutcome.NOT_FOUND and status in (OrderStatus.INTENT, OrderStatus.UNKNOWN):
        if age_s >= policy.intent_grace_s:
            return (RefuseOrder("the exchange has no order with this id", -2013),)
        return (SettleLater(policy.intent_grace_s - age_s),)
    return ()
