"""``make run`` keeps its secrets private: .env at mode 600, var/ at mode 700."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

from services.api.config import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "ensure-private.sh"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_env_and_var_are_created_private(tmp_path: Path) -> None:
    shutil.copy(PROJECT_ROOT / ".env.example", tmp_path / ".env.example")
    (tmp_path / ".env.example").chmod(0o644)
    subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, check=True, capture_output=True, umask=0o022)
    assert _mode(tmp_path / ".env") == 0o600
    assert _mode(tmp_path / "var") == 0o700
    assert (tmp_path / ".env").read_text() == (tmp_path / ".env.example").read_text()


def test_existing_readable_ones_are_tightened_and_kept(tmp_path: Path) -> None:
    shutil.copy(PROJECT_ROOT / ".env.example", tmp_path / ".env.example")
    (tmp_path / ".env").write_text("BINANCE_API_SECRET=mine\n")
    (tmp_path / ".env").chmod(0o644)
    (tmp_path / "var").mkdir(mode=0o755)
    (tmp_path / "var").chmod(0o755)
    result = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, check=True, capture_output=True, text=True)
    assert _mode(tmp_path / ".env") == 0o600 and _mode(tmp_path / "var") == 0o700
    assert (tmp_path / ".env").read_text() == "BINANCE_API_SECRET=mine\n"
    assert "readable by its owner only" in result.stdout
