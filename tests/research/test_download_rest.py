"""Downloads over REST from the simulator (BINANCE_ENV=sim): paging, idempotence, resumption,
gaps, rate limits and errors; the store must hold exactly the simulator's klines."""

from __future__ import annotations

import gzip
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.downloads import (
    MIN,
    REPO_ROOT,
    command,
    download_env,
    file_bytes,
    first_open_time,
    iso_arg,
    klines_requests,
    reference_klines,
    run_download,
    stored_rows,
)
from tests.support.simulator import SimulatorProcess, start_simulator

pytestmark = pytest.mark.integration
HISTORY = 2500  # closed candles per symbol: three pages of 1000
SYMBOLS = ("BTCUSDT", "ETHUSDT")


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    with start_simulator(tmp_path_factory.mktemp("download_sim"), speed=1, history=HISTORY) as process:
        yield process


@pytest.fixture
def live(sim: SimulatorProcess) -> Iterator[SimulatorProcess]:
    sim.reset_faults()
    yield sim
    sim.reset_faults()


def span(sim: SimulatorProcess) -> tuple[int, int]:
    """The simulator's history: its first candle up to the one forming when it started."""
    first = first_open_time(sim, "BTCUSDT")
    assert first == first_open_time(sim, "ETHUSDT")
    return first, first + HISTORY * MIN


def args(sim: SimulatorProcess, out: Path, *extra: str, symbols: str = "BTCUSDT,ETHUSDT") -> list[str]:
    start, end = span(sim)
    return [
        "--symbols",
        symbols,
        "--interval",
        "1m",
        "--start",
        iso_arg(start),
        "--end",
        iso_arg(end),
        "--out",
        str(out),
        *extra,
    ]


def series(out: Path, symbol: str) -> Path:
    return out / f"symbol={symbol}" / "interval=1m"


async def test_paged_download_equals_the_simulators_klines_and_a_rerun_fetches_nothing(
    live: SimulatorProcess, tmp_path: Path
) -> None:
    out = tmp_path / "store"
    cli = args(live, out)
    before = klines_requests(live)
    first = run_download(*cli, env=download_env(live))
    assert first.code == 0, first.stderr
    used = klines_requests(live) - before
    assert used == first.counts("BTCUSDT")[2] + first.counts("ETHUSDT")[2]
    start, end = span(live)
    for symbol in SYMBOLS:
        reference = await reference_klines(live, symbol, start, end)
        assert len(reference) == HISTORY
        assert stored_rows(series(out, symbol)) == reference  # every field, every decimal
        stored, new, requests = first.counts(symbol)
        assert (stored, new) == (HISTORY, HISTORY) and requests >= 3
    assert "no gaps" in first.stdout

    files, before = file_bytes(out), klines_requests(live)
    again = run_download(*cli, env=download_env(live))
    assert again.code == 0, again.stderr
    assert klines_requests(live) == before  # nothing was missing, nothing was asked for
    assert file_bytes(out) == files  # not even rewritten
    assert [again.counts(s) for s in SYMBOLS] == [(HISTORY, 0, 0)] * 2


async def test_a_killed_download_resumes_without_duplicates(live: SimulatorProcess, tmp_path: Path) -> None:
    full = run_download(*args(live, tmp_path / "full", symbols="BTCUSDT"), env=download_env(live))
    assert full.code == 0, full.stderr
    full_requests = full.counts("BTCUSDT")[2]

    out = tmp_path / "store"
    # Each page now takes 1.5 s, so the run is still busy when its first write is seen and killed.
    live.delay_next(1500, count=50, path_prefix="/api/v3/klines")
    kill_after_first_write(
        args(live, out, "--concurrency", "1", "--flush-every", "1", symbols="BTCUSDT"), out, download_env(live)
    )
    live.reset_faults()

    start, end = span(live)
    reference = await reference_klines(live, "BTCUSDT", start, end)
    partial = stored_rows(series(out, "BTCUSDT"))
    assert 0 < len(partial) < HISTORY
    assert set(partial) <= set(reference)  # what was written is whole and right

    resumed = run_download(*args(live, out, symbols="BTCUSDT"), env=download_env(live))
    assert resumed.code == 0, resumed.stderr
    assert stored_rows(series(out, "BTCUSDT")) == reference  # complete, in order, no candle twice
    stored, new, requests = resumed.counts("BTCUSDT")
    assert (stored, new) == (HISTORY, HISTORY - len(partial))
    assert requests < full_requests  # only the missing part was asked for


def kill_after_first_write(cli: list[str], out: Path, env: dict[str, str]) -> None:
    """Start the download, SIGKILL it as soon as a month file exists (bounded wait)."""
    proc = subprocess.Popen(command(*cli), cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not list(out.rglob("klines.parquet")):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "no month file written within 60 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stderr:
            proc.stderr.close()


def terminate_after_first_page(cli: list[str], sim: SimulatorProcess, before: int) -> tuple[int, str]:
    """Start the download, SIGTERM it once its second page was asked for (pages go one at a time)."""
    proc = subprocess.Popen(
        command(*cli),
        cwd=REPO_ROOT,
        env=download_env(sim),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while klines_requests(sim) - before < 2:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    return proc.returncode, stderr


def gapped_file(folder: Path, holes: list[range]) -> Path:
    """The bundled BTCUSDT week's first 2,200 candles with the rows of ``holes`` taken out."""
    source = REPO_ROOT / "data" / "BTCUSDT_1m_2025-05-20_2025-05-27.csv.gz"
    header, *lines = gzip.decompress(source.read_bytes()).decode().splitlines()
    dropped = {i for hole in holes for i in hole}
    kept = [line for i, line in enumerate(lines[:2200]) if i not in dropped]
    path = folder / "BTCUSDT_1m_gapped.csv.gz"
    path.write_bytes(gzip.compress(("\n".join([header, *kept]) + "\n").encode()))
    return path


async def test_gaps_are_found_reported_and_not_fetched_again(tmp_path: Path) -> None:
    data = gapped_file(tmp_path, [range(300, 301), range(1500, 1510)])
    rows = 2200 - 11
    with start_simulator(tmp_path / "sim", data=[data], speed=1, history=rows - 1) as gapped:
        start = first_open_time(gapped, "BTCUSDT")
        end = start + 2200 * MIN - MIN  # up to the candle forming at the start, excluded
        out = tmp_path / "store"
        cli = ["--symbols", "BTCUSDT", "--start", iso_arg(start - 30 * MIN), "--end", iso_arg(end), "--out", str(out)]
        first = run_download(*cli, env=download_env(gapped))
        assert first.code == 0, first.stderr
        reference = await reference_klines(gapped, "BTCUSDT", start, end)
        assert stored_rows(series(out, "BTCUSDT")) == reference and len(reference) == rows - 1
        assert "2 gap(s), 11 candles the exchange does not have" in first.stdout
        assert f"{iso_arg(start + 300 * MIN)} .. {iso_arg(start + 301 * MIN)} (1 missing)" in first.stdout
        assert f"{iso_arg(start + 1500 * MIN)} .. {iso_arg(start + 1510 * MIN)} (10 missing)" in first.stdout
        assert f"no candles before {iso_arg(start)} (first candle)" in first.stdout

        requests = klines_requests(gapped)
        again = run_download(*cli, env=download_env(gapped))
        assert again.code == 0 and klines_requests(gapped) == requests  # a gap is known, not missing
        assert "2 gap(s), 11 candles" in again.stdout


async def test_retry_after_and_server_errors_are_waited_out(live: SimulatorProcess, tmp_path: Path) -> None:
    out = tmp_path / "store"
    cli = args(live, out, "--concurrency", "1", symbols="BTCUSDT")
    live.throttle_next(1, status=429, retry_after=1, path_prefix="/api/v3/klines")
    live.fail_next(2, status=503, path_prefix="/api/v3/klines")
    before = klines_requests(live)
    outcome = run_download(*cli, env=download_env(live))
    sent = klines_requests(live) - before
    assert outcome.code == 0, outcome.stderr
    assert "HTTP 429 from Binance: waiting 1 s (Retry-After)" in outcome.stderr and "HTTP 503" in outcome.stderr
    start, end = span(live)
    assert stored_rows(series(out, "BTCUSDT")) == await reference_klines(live, "BTCUSDT", start, end)
    assert outcome.counts("BTCUSDT")[2] == sent >= 3 + 2  # three pages at least, and the refused ones


async def test_a_ban_longer_than_max_wait_stops_the_run_and_the_next_run_finishes(
    live: SimulatorProcess, tmp_path: Path
) -> None:
    out = tmp_path / "store"
    cli = args(live, out, "--max-wait", "5")
    live.throttle_next(5, status=418, retry_after=600, path_prefix="/api/v3/klines")
    stopped = run_download(*cli, env=download_env(live))
    assert stopped.code == 1
    assert "banned this IP for 600 s (HTTP 418, Retry-After)" in stopped.stderr
    assert "run the same command again later" in stopped.stderr
    live.reset_faults()
    finished = run_download(*cli, env=download_env(live))
    assert finished.code == 0, finished.stderr
    start, end = span(live)
    for symbol in SYMBOLS:
        assert stored_rows(series(out, symbol)) == await reference_klines(live, symbol, start, end)


def test_bad_arguments_fetch_nothing(live: SimulatorProcess, tmp_path: Path) -> None:
    before = klines_requests(live)
    cases = {
        ("--symbols", "BTCUSDT", "--start", "2024-13-01"): "--start: expected a date",
        (
            "--symbols",
            "BTCUSDT",
            "--start",
            "2024-01-02",
            "--end",
            "2024-01-01",
        ): "--end (2024-01-01T00:00:00Z) must be after",
        ("--symbols", "BTCUSDT", "--interval", "1M", "--start", "2024-01-01"): "--interval: must be one of",
        ("--symbols", "btc usdt", "--start", "2024-01-01"): "--symbols: expected names like",
    }
    for cli, message in cases.items():
        outcome = run_download(*cli, "--out", str(tmp_path), env=download_env(live))
        assert outcome.code == 2 and message in outcome.stderr, outcome.stderr
    unknown = run_download(
        "--symbols", "BTCUSDT,NOSUCHUSDT", "--start", "2024-01-01", "--out", str(tmp_path), env=download_env(live)
    )
    assert unknown.code == 1 and "--symbols: the exchange does not list one of BTCUSDT, NOSUCHUSDT" in unknown.stderr
    assert klines_requests(live) == before and not list(tmp_path.rglob("*.parquet"))


async def test_sigterm_writes_what_was_fetched_before_stopping(live: SimulatorProcess, tmp_path: Path) -> None:
    out = tmp_path / "store"
    cli = args(live, out, "--concurrency", "1", "--flush-every", "100", symbols="BTCUSDT")
    before = klines_requests(live)
    live.delay_next(1500, count=50, path_prefix="/api/v3/klines")
    code, stderr = terminate_after_first_page(cli, live, before)
    live.reset_faults()
    assert code == 1
    assert "interrupted: what was fetched is kept; run the same command to fetch the rest" in stderr
    start, end = span(live)
    partial = stored_rows(series(out, "BTCUSDT"))  # written on the way out, not by a flush
    assert 0 < len(partial) < HISTORY and set(partial) <= set(await reference_klines(live, "BTCUSDT", start, end))
