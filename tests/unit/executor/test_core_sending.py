"""Sending one order: every transition of the ``core.sending`` state machine."""

from __future__ import annotations

from services.executor.core import effects as fx
from services.executor.core.sending import (
    MAX_REFUSALS,
    Next,
    QueryOutcome,
    QueryStep,
    Sending,
    SendPolicy,
    after_settling_query,
    not_sent,
    on_query,
    on_reply,
    query_step,
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

POLICY = SendPolicy(send_attempts=3, query_attempts=5, max_retry_after_wait_s=10.0, intent_grace_s=10.0)
CID = "EB-BTCUSDT-1747699200000"
FIRST = Sending(CID).sent()


def codes(effects: tuple[fx.Effect, ...]) -> list[str]:
    return [e.code if isinstance(e, fx.Alert) else type(e).__name__ for e in effects]


def test_a_full_answer_is_applied_and_ends_the_sending() -> None:
    body = {"clientOrderId": CID, "status": "FILLED"}
    step = on_reply(FIRST, body, POLICY)
    assert step.next is Next.DONE and step.effects == (fx.ApplyAnswer(body),)


def test_a_short_retry_after_waits_and_sends_again_without_using_a_send() -> None:
    step = on_reply(FIRST, RateLimited("429", None, 2.0), POLICY)
    assert step.next is Next.SEND and codes(step.effects) == ["rate_limited"]
    assert (step.state.sends, step.state.refusals) == (0, 1)


def test_a_long_ban_or_too_many_refusals_leave_the_order_unsent() -> None:
    step = on_reply(FIRST, RateLimited("418", None, 60.0), POLICY)
    assert step.next is Next.DONE and step.effects == (fx.RefuseOrder("rate limited, retry after 60s: 418", None),)
    worn = Sending(CID, sends=1, refusals=MAX_REFUSALS - 1)
    assert on_reply(worn, RateLimited("429", -1003, 1.0), POLICY).next is Next.DONE


def test_a_ban_after_a_request_that_may_have_executed_is_settled_by_query() -> None:
    maybe = Sending(CID, sends=2, maybe_sent=True)
    step = on_reply(maybe, RateLimited("418", None, 60.0), POLICY)
    assert codes(step.effects) == ["order_unsettled", "SettleLater"]
    assert step.effects[-1] == fx.SettleLater(10.0)


def test_a_clock_skew_is_sent_again_until_the_attempts_are_used_up() -> None:
    assert on_reply(FIRST, ClockSkew("-1021", -1021), POLICY).next is Next.SEND
    last = Sending(CID, sends=3)
    step = on_reply(last, ClockSkew("-1021", -1021), POLICY)
    assert step.next is Next.DONE and codes(step.effects) == ["clock_skew", "RefuseOrder"]
    assert step.effects[-1] == fx.RefuseOrder("-1021", -1021)


def test_refused_credentials_refuse_the_order_for_good_and_stop_the_bot() -> None:
    step = on_reply(FIRST, CredentialsRejected("-2015 Invalid API-key", -2015), POLICY)
    assert step.effects == (
        fx.RefuseOrder("-2015 Invalid API-key", -2015, definite=True),
        fx.EnterError("credentials refused by the exchange: -2015 Invalid API-key"),
    )


def test_a_refusal_is_definite_and_a_filter_failure_reads_the_filters_again() -> None:
    step = on_reply(FIRST, Rejected("-2010 Account has insufficient balance", -2010), POLICY)
    assert step.next is Next.DONE and step.effects == (
        fx.RefuseOrder("-2010 Account has insufficient balance", -2010, True),
    )
    step = on_reply(FIRST, Rejected("-1013 Filter failure", -1013), POLICY)
    assert codes(step.effects) == ["RefuseOrder", "RefreshSymbolInfo"]


def test_a_duplicate_id_is_queried_not_refused() -> None:
    step = on_reply(FIRST, Rejected("-2010 Duplicate order sent.", -2010), POLICY)
    assert step.next is Next.QUERY and codes(step.effects) == ["MarkUnknown", "order_unknown"]
    assert not step.state.maybe_sent


def test_an_unknown_outcome_may_have_executed_and_is_queried() -> None:
    step = on_reply(FIRST, UnknownOutcome("order: timed out"), POLICY)
    assert step.next is Next.QUERY and step.state.maybe_sent
    assert step.effects[0] == fx.MarkUnknown("order: timed out")


def test_the_query_verdicts() -> None:
    assert on_query(FIRST, QueryOutcome.FOUND, POLICY).effects == ()
    resend = on_query(FIRST, QueryOutcome.NOT_FOUND, POLICY)
    assert resend.next is Next.SEND and codes(resend.effects) == ["order_resent"]
    given_up = on_query(Sending(CID, sends=3), QueryOutcome.NOT_FOUND, POLICY)
    assert given_up.effects == (fx.RefuseOrder("not placed after 3 attempts", None),)
    unknown = on_query(FIRST, QueryOutcome.INCONCLUSIVE, POLICY)
    assert unknown.next is Next.DONE and codes(unknown.effects) == ["order_unsettled", "SettleLater"]
    assert unknown.effects[-1] == fx.SettleLater(2.0)


def test_not_sent_rejects_at_once_only_what_cannot_have_reached_the_exchange() -> None:
    assert not_sent(FIRST, "lease lost", POLICY) == (fx.RefuseOrder("lease lost", None),)
    assert codes(not_sent(Sending(CID, maybe_sent=True), "lease lost", POLICY)) == ["order_unsettled", "SettleLater"]


def test_one_query_answer() -> None:
    assert query_step({"status": "FILLED"}, POLICY) is QueryStep.FOUND
    assert query_step(OrderNotFound("-2013", -2013), POLICY) is QueryStep.NOT_FOUND
    assert query_step(RateLimited("429", None, 1.0), POLICY) is QueryStep.RETRY
    assert query_step(RateLimited("418", None, 99.0), POLICY) is QueryStep.INCONCLUSIVE
    for error in (RetryLater("5xx"), UnknownOutcome("timeout"), ClockSkew("-1021", -1021)):
        assert query_step(error, POLICY) is QueryStep.RETRY
    assert query_step(Rejected("-1121 Invalid symbol", -1121), POLICY) is QueryStep.TROUBLE
    assert query_step(ExchangeError("odd"), POLICY) is QueryStep.TROUBLE


def test_an_unknown_id_is_rejected_only_once_its_grace_is_over() -> None:
    assert after_settling_query("INTENT", QueryOutcome.NOT_FOUND, 12.0, POLICY) == (
        fx.RefuseOrder("the exchange has no order with this id", -2013),
    )
    assert after_settling_query("UNKNOWN", QueryOutcome.NOT_FOUND, 4.0, POLICY) == (fx.SettleLater(6.0),)
    assert after_settling_query("SUBMITTED", QueryOutcome.NOT_FOUND, 99.0, POLICY) == ()
    assert after_settling_query("INTENT", QueryOutcome.INCONCLUSIVE, 99.0, POLICY) == (fx.SettleLater(2.0),)
    assert after_settling_query("INTENT", QueryOutcome.FOUND, 99.0, POLICY) == ()


WOULD_TAKE = Rejected("order: -2010 Order would immediately match and take.", -2010)


def test_a_limit_maker_that_would_take_is_priced_again_with_the_same_id_until_the_sends_run_out() -> None:
    state = Sending(CID, maker=True).sent()
    step = on_reply(state, WOULD_TAKE, POLICY)
    assert step.next is Next.REPRICE and codes(step.effects) == ["entry_repriced"]
    last = Sending(CID, sends=POLICY.send_attempts, maker=True)
    step = on_reply(last, WOULD_TAKE, POLICY)
    assert step.next is Next.DONE
    [refusal] = step.effects
    assert isinstance(refusal, fx.RefuseOrder) and refusal.definite and refusal.code == -2010


def test_a_market_order_refused_with_the_same_text_is_simply_refused() -> None:
    step = on_reply(FIRST, WOULD_TAKE, POLICY)
    assert step.next is Next.DONE and codes(step.effects) == ["RefuseOrder"]
