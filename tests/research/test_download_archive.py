"""Downloads from the public data archive's layout, served by a local HTTP server from zips the
test builds: daily files with microsecond times, a monthly file with a header line, a month only
published as days, a corrupted zip and a missing symbol."""

from __future__ import annotations

import gzip
import hashlib
import io
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from shared import kline_store
from tests.support.downloads import REPO_ROOT, Row, download_env, run_download, stored_rows
from tests.support.ports import free_port

pytestmark = pytest.mark.integration
MIN, HOUR = 60_000, 3_600_000
Q8 = Decimal("0.00000001")


def kline(open_ms: int, interval_ms: int, o: str, h: str, low: str, c: str, v: str) -> Row:
    """A kline in the stored form, with Binance's derived fields made up from the prices."""
    prices = [Decimal(x).quantize(Q8) for x in (o, h, low, c, v)]
    quote = (prices[4] * prices[3]).quantize(Q8)
    return (
        open_ms,
        *prices[:4],
        prices[4],
        open_ms + interval_ms - 1,
        quote,
        int(prices[4] * 10) + 1,
        (prices[4] / 2).quantize(Q8),
        (quote / 2).quantize(Q8),
    )


def csv_text(rows: list[Row], *, micro: bool, header: bool) -> str:
    unit = 1000 if micro else 1
    names = (
        "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
        "taker_buy_quote_volume,ignore"
    )
    lines = [names] if header else []
    for r in rows:
        lines.append(
            ",".join(
                [
                    str(r[0] * unit),
                    *(f"{x:.8f}" for x in r[1:6]),
                    str(r[6] * unit + (unit - 1)),
                    f"{r[7]:.8f}",
                    str(r[8]),
                    f"{r[9]:.8f}",
                    f"{r[10]:.8f}",
                    "0",
                ]
            )
        )
    return "\n".join(lines) + "\n"


def publish(root: Path, path: str, rows: list[Row], *, micro: bool = False, header: bool = False) -> Path:
    """Write ``path`` (under the archive root) as Binance does: a zip of one CSV, and its .CHECKSUM."""
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(target.name.replace(".zip", ".csv"), csv_text(rows, micro=micro, header=header))
    target.write_bytes(buffer.getvalue())
    digest = hashlib.sha256(buffer.getvalue()).hexdigest()
    (target.parent / (target.name + ".CHECKSUM")).write_text(f"{digest}  {target.name}\n")
    return target


def day_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def bundled_week() -> list[Row]:
    """The bundled BTCUSDT week (2025: the archive writes microseconds) as klines."""
    source = REPO_ROOT / "data" / "BTCUSDT_1m_2025-05-20_2025-05-27.csv.gz"
    lines = gzip.decompress(source.read_bytes()).decode().splitlines()[1:]
    return [kline(int(t), MIN, o, h, low, c, v) for t, o, h, low, c, v in (line.split(",") for line in lines)]


def hourly(start: str, end: str) -> list[Row]:
    first, last = day_ms(start), day_ms(end)
    return [
        kline(
            t,
            HOUR,
            f"{2000 + i % 50}.5",
            f"{2010 + i % 50}.25",
            f"{1990 + i % 50}",
            f"{2001 + i % 50}.75",
            f"{i % 7}.125",
        )
        for i, t in enumerate(range(first, last, HOUR))
    ]


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``python -m http.server`` on a free loopback port serving ``tmp_path/archive``."""
    root = tmp_path / "archive"
    root.mkdir()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None and time.monotonic() < deadline, "the archive server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", root
    finally:
        proc.terminate()
        proc.wait(10)


def days_of(rows: list[Row]) -> dict[str, list[Row]]:
    found: dict[str, list[Row]] = {}
    for r in rows:
        found.setdefault(datetime.fromtimestamp(r[0] / 1000, UTC).date().isoformat(), []).append(r)
    return found


def archive_args(url: str, out: Path, symbols: str, interval: str, start: str, end: str) -> list[str]:
    return [
        "--source",
        "archive",
        "--archive-url",
        url,
        "--symbols",
        symbols,
        "--interval",
        interval,
        "--start",
        start,
        "--end",
        end,
        "--out",
        str(out),
    ]


def test_daily_files_in_microseconds_are_verified_and_stored(archive: tuple[str, Path], tmp_path: Path) -> None:
    url, root = archive
    week = bundled_week()
    for day, rows in days_of(week).items():
        publish(root, f"data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-{day}.zip", rows, micro=True)
    out = tmp_path / "store"
    cli = archive_args(url, out, "BTCUSDT", "1m", "2025-05-20", "2025-05-27")
    first = run_download(*cli, env=download_env())
    assert first.code == 0, first.stderr
    assert stored_rows(out / "symbol=BTCUSDT" / "interval=1m") == week
    assert first.counts("BTCUSDT") == (10_080, 10_080, 14)  # 7 zips and their 7 CHECKSUM files
    assert "no gaps" in first.stdout
    again = run_download(*cli, env=download_env())
    assert again.code == 0 and again.counts("BTCUSDT") == (10_080, 0, 0)


def test_a_monthly_file_and_a_month_published_only_as_days(archive: tuple[str, Path], tmp_path: Path) -> None:
    url, root = archive
    february, march = hourly("2024-02-01", "2024-03-01"), hourly("2024-03-01", "2024-04-01")
    publish(root, "data/spot/monthly/klines/ETHUSDT/1h/ETHUSDT-1h-2024-02.zip", february, header=True)
    for day, rows in days_of(march).items():
        publish(root, f"data/spot/daily/klines/ETHUSDT/1h/ETHUSDT-1h-{day}.zip", rows)
    out = tmp_path / "store"
    outcome = run_download(*archive_args(url, out, "ETHUSDT", "1h", "2024-02-01", "2024-04-01"), env=download_env())
    assert outcome.code == 0, outcome.stderr
    assert stored_rows(out / "symbol=ETHUSDT" / "interval=1h") == february + march
    # February: zip + CHECKSUM; March: the monthly zip is missing (404), then 31 days of both files
    assert outcome.counts("ETHUSDT") == (696 + 744, 696 + 744, 2 + 1 + 62)
    assert [kline_store.read_month(p).coverage for p in sorted(out.rglob("klines.parquet"))] == [
        ((day_ms("2024-02-01"), day_ms("2024-03-01")),),
        ((day_ms("2024-03-01"), day_ms("2024-04-01")),),
    ]


def test_a_corrupted_zip_fails_its_checksum_and_nothing_of_it_is_stored(
    archive: tuple[str, Path], tmp_path: Path
) -> None:
    url, root = archive
    week = bundled_week()
    for day, rows in days_of(week).items():
        publish(root, f"data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-{day}.zip", rows, micro=True)
    damaged = root / "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2025-05-22.zip"
    good = damaged.read_bytes()
    corrupt = bytearray(good)
    corrupt[len(corrupt) // 2] ^= 0xFF
    damaged.write_bytes(bytes(corrupt))
    out = tmp_path / "store"
    cli = archive_args(url, out, "BTCUSDT", "1m", "2025-05-20", "2025-05-27")
    failed = run_download(*cli, "--concurrency", "1", env=download_env())  # one file at a time, in order
    assert failed.code == 1
    expected = hashlib.sha256(good).hexdigest()
    assert (
        f"error: BTCUSDT-1m-2025-05-22.zip: SHA-256 is {hashlib.sha256(corrupt).hexdigest()} but its "
        f".CHECKSUM says {expected}: the download is corrupt or the file was changed; nothing from it was stored"
    ) in failed.stderr
    may_22 = (day_ms("2025-05-22"), day_ms("2025-05-23"))
    assert stored_rows(out / "symbol=BTCUSDT" / "interval=1m") == week[: 2 * 1_440]  # the 20th and 21st, kept
    for path in out.rglob("klines.parquet"):
        month = kline_store.read_month(path)
        times = month.table.column("open_time").to_pylist()
        assert not [t for t in times if may_22[0] <= t < may_22[1]]
        assert all(end <= may_22[0] or start >= may_22[1] for start, end in month.coverage)

    damaged.write_bytes(good)
    resumed = run_download(*cli, env=download_env())
    assert resumed.code == 0, resumed.stderr
    assert stored_rows(out / "symbol=BTCUSDT" / "interval=1m") == week
    assert resumed.counts("BTCUSDT") == (10_080, 5 * 1_440, 5 * 2)  # only the five days still missing


def test_a_symbol_the_archive_does_not_have_is_an_error(archive: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = archive
    outcome = run_download(
        *archive_args(url, tmp_path / "store", "NOSUCHUSDT", "1d", "2024-01-01", "2024-03-01"), env=download_env()
    )
    assert outcome.code == 1
    assert "NOSUCHUSDT 1d: the archive has no file for this period" in outcome.stderr
