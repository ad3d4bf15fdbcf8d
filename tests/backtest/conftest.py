"""Fixtures of the backtester tests: the public candle set beside the repository.

Its folder is ``$SHARED_DATA_DIR`` or ``<repo>/../shared/data``. When a file is missing the
test that asks for it fails (inside the test, so it is reported as a failure, not skipped).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.shared_data import SharedData

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def shared_data() -> SharedData:
    return SharedData()


@pytest.fixture(scope="session")
def sample_file() -> Path:
    """The one-week candle file bundled with the repository."""
    return REPO_ROOT / "data" / "BTCUSDT_1m_2025-05-20_2025-05-27.csv.gz"
