"""The trading core: the decisions and the arithmetic of money, without I/O.

Indicators, signal rules, sizing and exchange rounding, protection levels, the ledger's fill
arithmetic, client order ids, the profit read model and the vocabulary they share. Nothing here
reads a clock, opens a socket or imports Redis, HTTP or SQL; the services, the backtester and
the api import it, so a live trade and a backtest take the same decisions.
"""
