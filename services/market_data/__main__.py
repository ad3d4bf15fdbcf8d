"""python -m services.market_data [--check]"""

from services.market_data.config import MarketDataSettings
from services.market_data.service import run
from shared.runner import run_service

if __name__ == "__main__":
    run_service("market_data", MarketDataSettings, run)
