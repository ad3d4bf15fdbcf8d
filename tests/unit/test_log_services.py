"""The dashboard's log filter lists every service that logs to the bus, from the start."""

from __future__ import annotations

import json
import re
from pathlib import Path

from shared import streams

LOGS_JS = Path(__file__).resolve().parents[2] / "frontend" / "js" / "logs.js"


def test_the_log_filter_lists_every_service_allowed_to_write_the_logs_stream() -> None:
    match = re.search(r"^const SERVICES = (\[[^\]]*\]);", LOGS_JS.read_text(), re.MULTILINE)
    assert match is not None, "frontend/js/logs.js no longer declares SERVICES"
    listed = json.loads(match.group(1))
    writers = [user.value for user, grant in streams.ACCESS.items() if streams.LOGS in grant.writes]
    assert sorted(listed) == sorted(writers)
    assert len(listed) == len(set(listed))
