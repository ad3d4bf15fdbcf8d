"""Parameter optimisation of a strategy: Optuna studies run on Dask, walk-forward, overfitting guards.

``python -m backtest.optimize`` (``backtest.optimize.cli``); the pieces: ``space`` (what is
searched), ``objectives`` (what is scored), ``trial`` (one run on a worker), ``scheduler``
(Dask), ``study`` (Optuna), ``walkforward`` and ``overfitting`` (pure figures), ``run``
(the whole plan), ``report`` (HTML).
"""
