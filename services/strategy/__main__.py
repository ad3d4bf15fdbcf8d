"""python -m services.strategy [--check]"""

from services.strategy.config import StrategySettings
from services.strategy.service import run
from shared.runner import run_service

if __name__ == "__main__":
    run_service("strategy", StrategySettings, run)
