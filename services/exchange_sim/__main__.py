"""Start the simulator: ``python -m services.exchange_sim`` (configuration from EXCHANGE_SIM_*)."""

from __future__ import annotations

import asyncio
import logging
import sys

from .config import ConfigError, load_settings


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        from .app import Simulator, serve

        simulator = Simulator(load_settings())
    except ConfigError as exc:
        print(f"exchange_sim: configuration error: {exc}", file=sys.stderr)
        return 2
    asyncio.run(serve(simulator))
    return 0


if __name__ == "__main__":
    sys.exit(main())
