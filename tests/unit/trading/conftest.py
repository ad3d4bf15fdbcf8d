"""Fixtures of the strategy tests: the public candle set beside the repository.

Its folder is ``$SHARED_DATA_DIR`` or ``<repo>/../shared/data``. When it is missing the test
that asks for it fails (inside the test, so it is reported as a failure, not skipped).
"""

from __future__ import annotations

import pytest

from tests.support.shared_data import SharedData


@pytest.fixture(scope="session")
def shared_data() -> SharedData:
    return SharedData()
