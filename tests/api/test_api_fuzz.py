"""The short version of ``make fuzz``: schemathesis, every check, over the real api process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.api.config import PROJECT_ROOT


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_schemathesis_finds_no_server_error_and_no_schema_violation() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/fuzz_api.py", "--max-examples", "5", "--min-requests", "500"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
