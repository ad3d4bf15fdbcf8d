"""docker-compose.yml validated by the real Compose binary (no Docker engine needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import compose
import yaml

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(compose.__file__).parent / "docker-compose"


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BINARY), "-f", "docker-compose.yml", "config", "--quiet"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), **env},
        capture_output=True,
        text=True,
        timeout=60,
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
    everything = spec["services"]
    # The services of `docker compose up`; profiles (monitoring, ...) add tools beside them.
    services = {name: service for name, service in everything.items() if "profiles" not in service}
    assert set(services) == {"redis", "exchange_sim", "market_data", "strategy", "executor", "notifier", "api"}
    for name, service in services.items():
        assert "healthcheck" in service, name
    for name, service in everything.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)
    for name in ("market_data", "strategy", "executor", "notifier", "api"):
        assert services[name]["healthcheck"]["test"][-1] == "--check"
    assert "db-data" in spec["volumes"]


def test_executor_and_api_share_the_ledger_on_the_volume_whatever_make_runs_env_says() -> None:
    import json

    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "REDIS_PASSWORD": "x",
        "DASHBOARD_PASSWORD": "y",
        "DATABASE_URL": "sqlite:///var/bot.sqlite3",
    }
    result = subprocess.run(
        [str(BINARY), "-f", "docker-compose.yml", "config", "--format", "json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    urls = {services[name]["environment"]["DATABASE_URL"] for name in ("executor", "notifier", "api")}
    assert urls == {"sqlite:////app/var/db/bot.sqlite3"}
    for name in ("executor", "notifier", "api"):
        assert any(volume["target"] == "/app/var/db" for volume in services[name]["volumes"])


def test_each_service_logs_in_as_its_own_user_and_never_sees_the_admin_password() -> None:
    import json

    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "REDIS_PASSWORD": "admin-secret",
        "DASHBOARD_PASSWORD": "y",
    }
    result = subprocess.run(
        [str(BINARY), "-f", "docker-compose.yml", "config", "--format", "json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    spec = json.loads(result.stdout)
    services = spec["services"]
    assert "--aclfile" in services["redis"]["command"]
    for name in ("market_data", "strategy", "executor", "notifier", "api"):
        environment = services[name]["environment"]
        assert environment["REDIS_USERNAME"] == name
        assert environment["REDIS_PASSWORD"] == "" and "admin-secret" not in environment["REDIS_URL"]
        mounted = {(s["source"], s.get("target")) for s in services[name]["secrets"]}
        assert (f"redis_{name}", "redis_password") in mounted
        assert ("bus_signing_key" in {s for s, _ in mounted}) == (name not in ("market_data", "notifier"))
    assert {s["file"].rsplit("/", 1)[-1] for s in spec["secrets"].values()} >= {"users.acl", "bus-signing.key"}


def test_the_secrets_command_writes_an_acl_file_redis_accepts(tmp_path: Path) -> None:
    import redis as redis_client

    from tests.support.ports import free_port

    folder = tmp_path / "compose"
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "REDIS_PASSWORD": "admin-secret"}
    result = subprocess.run(
        [sys.executable, "-m", "shared.redis_acl", "compose", "--dir", str(folder)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    port = free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--aclfile",
            str(folder / "users.acl"),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        import time

        admin = redis_client.Redis(port=port, password="admin-secret", socket_timeout=2)
        for _ in range(100):
            try:
                admin.ping()
                break
            except redis_client.ConnectionError:
                time.sleep(0.05)
        for name in ("market_data", "strategy", "executor", "notifier", "api"):
            password = (folder / f"redis-{name}.password").read_text()
            assert redis_client.Redis(port=port, username=name, password=password).ping()
        api = redis_client.Redis(port=port, username="api", password=(folder / "redis-api.password").read_text())
        try:
            api.xadd("executor:inbox:BTCUSDT", {"side": "BUY"})
            raise AssertionError("the api appended to an executor inbox")
        except redis_client.exceptions.NoPermissionError:
            pass
    finally:
        server.terminate()
        server.wait(5)


def test_the_monitoring_profile_scrapes_every_service_inside_the_network() -> None:
    import json

    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "REDIS_PASSWORD": "x"}
    result = subprocess.run(
        [str(BINARY), "-f", "docker-compose.yml", "--profile", "monitoring", "config", "--format", "json"],
        cwd=ROOT,
        env={**env, "DASHBOARD_PASSWORD": "y"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert {"prometheus", "grafana"} <= set(services)
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            if volume["type"] == "bind":
                assert Path(volume["source"]).exists(), (name, volume["source"])
    scraped = yaml.safe_load((ROOT / "monitoring/prometheus/prometheus.yml").read_text())
    targets = {t for job in scraped["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    for name, port in {"market_data": 9101, "strategy": 9102, "executor": 9103, "notifier": 9104, "api": 9105}.items():
        assert f"{name}:{port}" in targets
        environment = services[name]["environment"]
        assert environment["METRICS_HOST"] == "0.0.0.0"
        # Reached by Prometheus inside the network; never published on the host.
        assert all(str(p.get("target")) != str(port) for p in services[name].get("ports", [])), name
    assert services["api"]["environment"]["API_METRICS_PORT"] == "9105"


def test_the_grafana_dashboard_is_valid_and_uses_the_provisioned_data_source() -> None:
    import json

    grafana = ROOT / "monitoring" / "grafana"
    [source] = yaml.safe_load((grafana / "provisioning/datasources/prometheus.yml").read_text())["datasources"]
    provider = yaml.safe_load((grafana / "provisioning/dashboards/bot.yml").read_text())["providers"][0]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboard = json.loads((grafana / "dashboards/bot.json").read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert dashboard["uid"] and len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]


def test_the_research_profile_is_a_dask_scheduler_and_scalable_workers_on_the_projects_image() -> None:
    import json

    result = subprocess.run(
        [str(BINARY), "-f", "docker-compose.yml", "--profile", "research", "config", "--format", "json"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "HOME": "/root", "REDIS_PASSWORD": "x", "DASHBOARD_PASSWORD": "y"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    scheduler, worker = services["dask-scheduler"], services["dask-worker"]
    assert scheduler["image"] == worker["image"] == services["api"]["image"]
    assert scheduler["command"][:2] == ["dask", "scheduler"]
    assert worker["command"][:3] == ["dask", "worker", "tcp://dask-scheduler:8786"]
    assert "container_name" not in worker  # --scale dask-worker=N needs unnamed containers
    assert worker["depends_on"]["dask-scheduler"]["condition"] == "service_healthy"
