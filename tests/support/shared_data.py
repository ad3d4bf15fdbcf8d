"""The public candle set beside the repository, for tests that read it.

A missing file fails the test that asks for it (a failure, never a skip).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.candles import shared_data_dir

MAIN_SERIES = "BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz"


class SharedData:
    """Looks up files of the public candle set, failing the calling test when one is missing."""

    def __init__(self) -> None:
        self.folder = shared_data_dir()

    def file(self, name: str) -> Path:
        path = self.folder / name
        if not path.is_file():
            pytest.fail(
                f"{name} not found in the public candle set folder {self.folder.resolve()} "
                "(set SHARED_DATA_DIR to the folder holding it)"
            )
        return path

    def main_series(self) -> Path:
        return self.file(MAIN_SERIES)

    def all_files(self, expected: int) -> list[Path]:
        files = sorted(self.folder.glob("*.csv.gz"))
        if len(files) < expected:
            pytest.fail(
                f"expected {expected} candle files in {self.folder.resolve()}, found {len(files)} "
                "(set SHARED_DATA_DIR to the folder of the public candle set)"
            )
        return files
