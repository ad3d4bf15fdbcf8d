"""Binance's public data archive: monthly and daily spot kline zips, verified by their CHECKSUM.

Layout under the base URL (``https://data.binance.vision``)::

    data/spot/monthly/klines/<SYMBOL>/<interval>/<SYMBOL>-<interval>-<YYYY>-<MM>.zip
    data/spot/daily/klines/<SYMBOL>/<interval>/<SYMBOL>-<interval>-<YYYY>-<MM>-<DD>.zip

Each zip has a ``<name>.zip.CHECKSUM`` beside it: ``<sha256 hex>  <name>.zip``, as ``sha256sum``
writes it. A zip holds one CSV of the 12 kline fields, without a header line in spot files (one is
skipped if present). Open and close times are in milliseconds, and in microseconds in files from
2025-01-01 on. A month or day the archive has no file for answers 404: not published yet, or
before the symbol was listed.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import re
import zipfile
from datetime import date

import aiohttp
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from research.data.errors import ChecksumError, DownloadError
from shared import kline_store

log = logging.getLogger("research.data")
ARCHIVE_URL = "https://data.binance.vision"
_CSV_COLUMNS = (*kline_store.FIELDS, "ignore")
_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
MICROSECONDS_FROM = 10**14  # an epoch-ms time passes this only in the year 5138


def monthly_path(symbol: str, interval: str, month: str) -> str:
    return f"data/spot/monthly/klines/{symbol}/{interval}/{symbol}-{interval}-{month}.zip"


def daily_path(symbol: str, interval: str, day: date) -> str:
    return f"data/spot/daily/klines/{symbol}/{interval}/{symbol}-{interval}-{day.isoformat()}.zip"


def verify(name: str, data: bytes, checksum_text: str) -> None:
    """Raise ChecksumError unless ``data`` has the SHA-256 its ``.CHECKSUM`` file states."""
    parts = checksum_text.split()
    if not parts or not _HEX.match(parts[0]):
        raise ChecksumError(
            f"{name}: its .CHECKSUM file does not hold a SHA-256 ({checksum_text[:80]!r}); nothing from it was stored"
        )
    if len(parts) > 1 and parts[1].lstrip("*") != name:
        raise ChecksumError(f"{name}: its .CHECKSUM file is for {parts[1]!r}; nothing from it was stored")
    actual = hashlib.sha256(data).hexdigest()
    if actual != parts[0].lower():
        raise ChecksumError(
            f"{name}: SHA-256 is {actual} but its .CHECKSUM says {parts[0].lower()}: the download is "
            "corrupt or the file was changed; nothing from it was stored"
        )


def parse_zip(name: str, data: bytes) -> pa.Table:
    """The klines of an archive zip as a table of ``kline_store.SCHEMA`` (times in ms)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [m for m in archive.namelist() if m.endswith(".csv")]
            if len(members) != 1:
                raise DownloadError(f"{name}: expected one CSV inside, found {len(members)}")
            text = archive.read(members[0])
    except zipfile.BadZipFile as e:
        raise DownloadError(f"{name}: not a zip file ({e})") from None
    header = text[:9] == b"open_time"
    types = {n: (pa.string() if n in kline_store.DECIMAL_FIELDS else pa.int64()) for n in kline_store.FIELDS}
    try:
        table = pacsv.read_csv(
            io.BytesIO(text),
            read_options=pacsv.ReadOptions(column_names=list(_CSV_COLUMNS), skip_rows=1 if header else 0),
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(kline_store.FIELDS)),
        )
        columns = {
            n: table.column(n).cast(kline_store.DECIMAL) if n in kline_store.DECIMAL_FIELDS else table.column(n)
            for n in kline_store.FIELDS
        }
    except pa.ArrowInvalid as e:
        raise DownloadError(f"{name}: not a kline CSV ({e})") from None
    if table.num_rows and pc.min(columns["open_time"]).as_py() >= MICROSECONDS_FROM:
        for n in ("open_time", "close_time"):
            columns[n] = pc.divide(columns[n], 1000)
    try:
        return kline_store.sort_unique(pa.table(columns, schema=kline_store.SCHEMA))
    except kline_store.KlineStoreError as e:
        raise DownloadError(f"{name}: {e}") from None


class ArchiveFiles:
    """Fetches and verifies archive files under one base URL."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, *, attempts: int = 5, backoff_s: float = 0.5
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.requests = 0

    async def klines(self, path: str) -> pa.Table | None:
        """The verified klines of the zip at ``path``, or None when the archive has no such file."""
        name = path.rsplit("/", 1)[-1]
        data = await self._get(path)
        if data is None:
            return None
        checksum = await self._get(path + ".CHECKSUM")
        if checksum is None:
            raise ChecksumError(
                f"{name}: the archive has no {name}.CHECKSUM beside it, so it cannot be verified; "
                "nothing from it was stored"
            )
        verify(name, data, checksum.decode(errors="replace"))
        return parse_zip(name, data)

    async def _get(self, path: str) -> bytes | None:
        url = f"{self.base_url}/{path}"
        problem = ""
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(min(self.backoff_s * 2 ** (attempt - 1), 30.0))
            try:
                self.requests += 1
                async with self.session.get(url) as response:
                    if response.status == 404:
                        return None
                    if response.status == 200:
                        return await response.read()
                    problem = f"HTTP {response.status}"
                    if response.status < 500 and response.status != 429:
                        raise DownloadError(f"GET {url}: {problem}")
            except (aiohttp.ClientError, TimeoutError) as e:
                problem = f"{type(e).__name__}: {e}".rstrip(": ")
            log.warning("GET %s failed (%s), trying again", url, problem)
        raise DownloadError(f"GET {url}: no answer after {self.attempts} attempts ({problem})")
