"""Fuzz the api with schemathesis over its own OpenAPI document, against the real thing.

Starts a private redis-server and ``python -m services.api`` (real lifespan, migrated SQLite
ledger), signs in, then runs ``schemathesis run`` with every check, as a signed-in client.
Exit status: schemathesis' (0 = no server error, no schema violation).

    python scripts/fuzz_api.py --max-examples 300     # make fuzz (>= 10,000 requests)
    python scripts/fuzz_api.py --max-examples 8       # the short version run by make test
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.store.database import migrate
from tests.support.ports import free_port
from tests.support.redis_server import start_redis

CONFIG = ROOT / "scripts" / "schemathesis.toml"
# The session cookie goes where the document asks for it (the APIKeyCookie scheme), so
# schemathesis also checks that each protected operation refuses a request without it.
AUTH = """
[auth.openapi.APIKeyCookie]
api_key = "${FUZZ_SESSION}"
"""


def api_env(redis_url: str, folder: Path, port: int, password: str) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("DASHBOARD_", "API_", "SYMBOL", "SSE_"))
    }
    env.update(
        PYTHONPATH=str(ROOT),
        REDIS_URL=redis_url,
        API_PORT=str(port),
        DASHBOARD_PASSWORD=password,
        DATABASE_URL=f"sqlite:///{folder / 'ledger.sqlite3'}",
        REPORTS_DIR=str(folder / "reports"),
        SYMBOLS="BTCUSDT,ETHUSDT",
        LOG_LEVEL="WARNING",
        # Every service refuses to start without the bus key (commands it writes are signed).
        BUS_SIGNING_KEY=secrets.token_hex(32),
        # An event stream ends after this long, so a fuzzed GET /api/events gets a complete answer.
        SSE_MAX_STREAM_S="0.3",
    )
    return env


def wait_ready(process: subprocess.Popen[bytes], url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the api exited with {process.returncode} (its log is printed above)")
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code in (200, 503):
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit("the api did not answer in time")


def schemathesis(url: str, args: argparse.Namespace, report: Path, config: Path, session: str) -> int:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        f"{url}/api/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(args.max_examples),
        "--seed",
        str(args.seed),
        "--workers",
        str(args.workers),
        "--request-timeout",
        "10",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        "--no-shrink",
    ]
    print("+", " ".join(command), flush=True)
    return subprocess.run(command, cwd=report.parent, env={**os.environ, "FUZZ_SESSION": session}).returncode


def count_requests(report: Path) -> int:
    """HTTP requests schemathesis sent: the interactions recorded in each finished scenario."""
    if not report.exists():
        return 0
    total = 0
    for line in report.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if finished:
            total += len(finished.get("recorder", {}).get("interactions", {}))
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-examples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--min-requests", type=int, default=0, help="fail when fewer requests were sent")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fuzz-api-") as tmp:
        folder = Path(tmp)
        redis_server = start_redis(folder / "redis")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        password = secrets.token_urlsafe(16)
        env = api_env(redis_server.url, folder, port, password)
        migrate(env["DATABASE_URL"])
        log = (folder / "api.log").open("wb")
        api = subprocess.Popen([sys.executable, "-m", "services.api"], cwd=folder, env=env, stderr=log, stdout=log)
        try:
            try:
                wait_ready(api, url)
            except SystemExit:
                log.flush()
                print((folder / "api.log").read_text(errors="replace")[-4000:], file=sys.stderr)
                raise
            response = httpx.post(f"{url}/api/login", json={"password": password})
            response.raise_for_status()
            config = folder / "schemathesis.toml"
            config.write_text(CONFIG.read_text() + AUTH)
            report = folder / "fuzz.ndjson"
            status = schemathesis(url, args, report, config, response.cookies["bot_session"])
            requests = count_requests(report)
            print(f"fuzz: {requests} requests sent by schemathesis, exit status {status}")
            errors = [
                line
                for line in (folder / "api.log").read_text(errors="replace").splitlines()
                if "Traceback" in line or " ERROR " in line
            ]
            if errors:
                print("api errors logged:\n" + "\n".join(errors[:20]))
                status = status or 1
            if requests < args.min_requests:
                print(f"fuzz: fewer than the {args.min_requests} requests asked for")
                status = status or 1
            return status
        finally:
            api.terminate()
            try:
                api.wait(15)
            except subprocess.TimeoutExpired:
                api.kill()
            redis_server.stop()
            log.close()
            if os.environ.get("FUZZ_KEEP_REPORT"):
                import shutil

                shutil.copy(folder / "fuzz.ndjson", os.environ["FUZZ_KEEP_REPORT"])


if __name__ == "__main__":
    raise SystemExit(main())
