"""What one consumer round of the strategy decided, published in one transaction.

A round is whatever one read of the owned kline streams brought: at a minute close, the closes
that arrived since the last read, of tens of symbols at once when the strategy is behind; at a
start, thousands of history candles. Each evaluation's output (its decision, its signal if any)
and the acknowledgement of the entries it is the output of are queued here, and the round ends
with all of them in one MULTI/EXEC instead of one transaction per candle (a signal does not wait:
the service publishes it at once with what was queued before it). An entry is still
acknowledged only together with its output: a strategy killed before the flush, or a flush that
failed, leaves every entry of the round pending, to be evaluated again under the same event ids.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass

from redis.asyncio import Redis

from shared.bus import publish_atomically
from shared.events import Envelope


@dataclass(frozen=True, slots=True)
class Output:
    """One evaluation's events and the (stream, group, entry id) acknowledgements they carry."""

    symbol: str
    items: list[tuple[str, Envelope]]
    acks: list[tuple[str, str, str]]
    kline_entry_id: str | None  # the evaluated candle's own entry (its latency is measured from it)


class Outbox:
    """The round's outputs, in evaluation order."""

    def __init__(self) -> None:
        self.outputs: list[Output] = []
        self.events = 0  # queued events, for the caller's bound on a transaction

    def add(self, output: Output) -> None:
        self.outputs.append(output)
        self.events += len(output.items)

    def discard(self) -> None:
        """Forget what was queued: its entries stay pending and are evaluated again."""
        self.outputs, self.events = [], 0

    async def flush(self, redis: Redis, owned: Container[str]) -> list[Output]:
        """Publish the outputs of the symbols still ``owned`` in one transaction, and return them.
        A symbol given up during the round (its lease lost) publishes nothing: its entries stay
        pending for its next owner, which evaluates them under the same event ids."""
        outputs, self.outputs, self.events = self.outputs, [], 0
        kept = [output for output in outputs if output.symbol in owned]
        if kept:
            await publish_atomically(
                redis,
                [item for output in kept for item in output.items],
                acks=[ack for output in kept for ack in output.acks],
            )
        return kept
