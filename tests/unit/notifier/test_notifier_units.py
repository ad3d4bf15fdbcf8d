"""The notifier's pure parts: which events make which message, the market-day clock, the
settings' checks, and that configured URLs never reach a log line."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from services.notifier.config import NotifierSettings
from services.notifier.delivery import protect
from services.notifier.messages import NotifyKind, Severity, classify, daily_summary
from services.notifier.summary import DAY_MS, day_end, day_label
from shared.events import CommandOutcome, ExecutorAlert, Outcome, make_event
from shared.logs import redact
from shared.settings import format_settings_error
from shared.trading.profit import Figures

T0 = 1_747_699_200_000  # 2025-05-20T00:00Z


def test_alerts_below_the_level_and_unfinished_commands_make_no_message() -> None:
    info = make_event(ExecutorAlert(level="info", code="reconciled", message="ok"), "executor")
    assert classify(info, "warning") is None
    assert classify(info, "info") is not None
    accepted = make_event(
        CommandOutcome(command_id="c", command="close_position", outcome=Outcome.ACCEPTED), "executor"
    )
    assert classify(accepted) is None
    refused = make_event(
        CommandOutcome(
            command_id="c", command="close_position", outcome=Outcome.REFUSED, reason="no position", symbol="ETHUSDT"
        ),
        "executor",
    )
    note = classify(refused)
    assert note is not None and note.kind is NotifyKind.COMMAND and note.severity is Severity.WARNING
    assert (note.title, note.body) == ("Command close_position (ETHUSDT): refused", "no position")
    assert note.key == refused.event_id


def test_breaker_alerts_are_their_own_kind() -> None:
    tripped = make_event(ExecutorAlert(level="error", code="breaker_daily_loss", message="entries paused"), "executor")
    note = classify(tripped)
    assert note is not None and note.kind is NotifyKind.BREAKER and note.severity is Severity.FAILURE


def test_a_market_day_ends_at_the_configured_utc_time_of_market_time() -> None:
    assert day_end(T0 + 10 * 3_600_000, 0) == T0
    assert day_end(T0, 0) == T0
    assert day_end(T0 - 1, 0) == T0 - DAY_MS
    at = 21 * 60 + 30
    assert day_end(T0 + 22 * 3_600_000, at) == T0 + 21 * 3_600_000 + 30 * 60_000
    assert day_end(T0 + 20 * 3_600_000, at) == T0 - DAY_MS + 21 * 3_600_000 + 30 * 60_000
    assert day_label(T0 + DAY_MS, 0) == "2025-05-20"
    assert day_label(T0 + 21 * 3_600_000 + 30 * 60_000, at) == "2025-05-19 21:30 to 2025-05-20 21:30 UTC"


def test_a_quiet_day_says_so_with_the_totals() -> None:
    total = Figures(
        trades=3,
        wins=2,
        realised_quote=Decimal("12.346"),
        win_rate_pct=Decimal("66.666"),
        open_trades=1,
        unrealised_quote=Decimal("-1.5"),
    )
    note = daily_summary("2025-05-20", T0 + DAY_MS, Figures(), total, "USDT")
    assert note.key == f"daily_summary:{T0 + DAY_MS}"
    assert note.body == (
        "No trade closed. Since the start: 3 trade(s), realised +12.35 USDT, win rate 66.67 %; "
        "1 open (unrealised -1.50 USDT)."
    )


def settings(**env: str) -> NotifierSettings:
    return NotifierSettings(_env_file=None, **env)


def test_settings_name_the_bad_variable_and_never_echo_a_url() -> None:
    with pytest.raises(ValidationError) as error:
        settings(NOTIFY_URLS="json://127.0.0.1:9/ nosuchscheme://s3cret-token-value/x")
    printed = format_settings_error(error.value)  # what a service prints before it exits
    assert "NOTIFY_URLS: entry 2 (scheme 'nosuchscheme')" in printed and "s3cret" not in printed
    with pytest.raises(ValidationError, match="unknown fills"):
        settings(NOTIFY_EVENTS="entry_fill,fills")
    with pytest.raises(ValidationError, match="HH:MM"):
        settings(NOTIFY_SUMMARY_AT="25:00")
    chosen = settings(NOTIFY_EVENTS="exit_fill, alert", NOTIFY_SUMMARY_AT="21:30")
    assert chosen.kinds == {NotifyKind.EXIT_FILL, NotifyKind.ALERT} and chosen.summary_minute == 21 * 60 + 30
    assert "json" not in repr(settings(NOTIFY_URLS="json://user:pw12345678@127.0.0.1:9/"))


def test_a_configured_url_and_its_tokens_are_masked_in_log_lines() -> None:
    url = "tgram://123456789:AAbbCCddEEffGGhh/-100123456"
    protect(url)
    line = redact(f"sending to {url} failed; bot 123456789:AAbbCCddEEffGGhh said no; host api.telegram.org")
    assert "AAbbCCddEEffGGhh" not in line and "123456789" not in line and "api.telegram.org" in line
