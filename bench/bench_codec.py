"""Hot-path encoding cost per ticker event: validating pydantic models against ``model_construct``
(a script that prints a table; nothing is asserted).

    .venv/bin/python bench/bench_codec.py [--events 20000]

Per mini-ticker, in this process, medians of 5 runs in µs per event:

* ``build (validated)``: ``Ticker(...)`` from Binance's decimal strings, then ``make_event``, as
  market_data does for every ticker it publishes;
* ``build (model_construct)``: the same objects without validation;
* ``encode``: the envelope flattened into stream fields (``shared.codec.encode``);
* ``decode (validated)``: stream fields back into an envelope (``shared.codec.decode``), as the
  executor does for every entry it reads;
* ``decode (model_construct)``: the same fields into the same classes without validation.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_backtest import machine
from shared.codec import decode, encode
from shared.events import Envelope, Ticker, make_event, now_ms

EVENT_MS = 1_700_000_000_000
RAW = {"e": "24hrMiniTicker", "s": "BTCUSDT", "c": "104321.55000000"}
RAW |= {"o": "103000.00000000", "h": "105000.00000000", "l": "102000.00000000"}
RAW |= {"v": "12345.12345000", "q": "1287654321.12345678"}


def validated() -> Envelope:
    ticker = Ticker(
        symbol=RAW["s"],
        price=Decimal(RAW["c"]),
        open=Decimal(RAW["o"]),
        high=Decimal(RAW["h"]),
        low=Decimal(RAW["l"]),
        volume=Decimal(RAW["v"]),
        quote_volume=Decimal(RAW["q"]),
    )
    return make_event(ticker, "market_data", EVENT_MS)


def constructed() -> Envelope:
    ticker = Ticker.model_construct(
        symbol=RAW["s"],
        price=Decimal(RAW["c"]),
        open=Decimal(RAW["o"]),
        high=Decimal(RAW["h"]),
        low=Decimal(RAW["l"]),
        volume=Decimal(RAW["v"]),
        quote_volume=Decimal(RAW["q"]),
    )
    return Envelope.model_construct(
        event_id=uuid.uuid4().hex,
        type=Ticker.TYPE,
        version=1,
        source="market_data",
        ts_event_ms=EVENT_MS,
        ts_init_ms=now_ms(),
        payload=ticker,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    fields = encode(validated())

    def construct_decode() -> Envelope:
        payload = Ticker.model_construct(
            symbol=fields["symbol"],
            price=Decimal(fields["price"]),
            open=Decimal(fields["open"]),
            high=Decimal(fields["high"]),
            low=Decimal(fields["low"]),
            volume=Decimal(fields["volume"]),
            quote_volume=Decimal(fields["quote_volume"]),
        )
        return Envelope.model_construct(
            event_id=fields["event_id"],
            type=fields["type"],
            version=int(fields["version"]),
            source=fields["source"],
            ts_event_ms=int(fields["ts_event_ms"]),
            ts_init_ms=int(fields["ts_init_ms"]),
            payload=payload,
        )

    event = validated()
    cases: list[tuple[str, Callable[[], object]]] = [
        ("build (validated)", validated),
        ("build (model_construct)", constructed),
        ("encode", lambda: encode(event)),
        ("decode (validated)", lambda: decode(fields)),
        ("decode (model_construct)", construct_decode),
    ]
    print(f"machine: {machine()}; {args.events} events per run, median of 5 runs")
    print(f"{'step':<56} {'µs/event':>9}")
    for name, run in cases:
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(args.events):
                run()
            runs.append((time.perf_counter() - start) / args.events * 1e6)
        print(f"{name:<56} {statistics.median(runs):>9.2f}")


if __name__ == "__main__":
    main()
