"""``python -m backtest.optimize``: see ``backtest.optimize.cli``."""

from backtest.optimize.cli import main

raise SystemExit(main())
