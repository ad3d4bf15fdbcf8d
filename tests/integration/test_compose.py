"""docker-compose.yml validated by the real Compose binary (no Docker engine needed)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import compose
import yaml

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(compose.__file__).parent / "docker-compose"


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BINARY), "-f", "docker-compose.yml", "config", "--quiet"],
        cwd=ROOT, env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), **env},
        capture_output=True, text=True, timeout=60,
    )


def test_compose_file_is_valid_with_its_required_secrets() -> None:
    result = compose_config({"REDIS_PASSWORD": "x", "DASHBOARD_PASSWORD": "y"})
    assert result.returncode == 0, result.stderr


def test_missing_required_secret_is_refused_with_its_name() -> None:
    result = compose_config({"DASHBOARD_PASSWORD": "y"})
    assert result.returncode != 0
    assert "REDIS_PASSWORD must be set" in result.stderr


def test_check_script_verifies_build_contexts() -> None:
    result = subprocess.run(["scripts/compose-check.sh"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "every build context and Dockerfile exists" in result.stdout


def test_every_service_has_a_healthcheck_and_ports_bind_to_loopback() -> None:
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = spec["services"]
    assert set(services) == {"redis", "exchange_sim", "market_data", "strategy", "executor", "api"}
    for name, service in services.items():
        assert "healthcheck" in service, name
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)
    for name in ("market_data", "strategy", "executor", "api"):
        assert services[name]["healthcheck"]["test"][-1] == "--check"
    assert "db-data" in spec["volumes"]


def test_executor_and_api_share_the_ledger_on_the_volume_whatever_make_runs_env_says() -> None:
    import json

    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "REDIS_PASSWORD": "x",
           "DASHBOARD_PASSWORD": "y", "DATABASE_URL": "sqlite:///var/bot.sqlite3"}
    result = subprocess.run([str(BINARY), "-f", "docker-compose.yml", "config", "--format", "json"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    urls = {services[name]["environment"]["DATABASE_URL"] for name in ("executor", "api")}
    assert urls == {"sqlite:////app/var/db/bot.sqlite3"}
    for name in ("executor", "api"):
        assert any(volume["target"] == "/app/var/db" for volume in services[name]["volumes"])
