"""Historical candles from Binance (REST klines or the public data archive) into the Parquet store.

``python -m research.data --symbols BTCUSDT,ETHUSDT --interval 1m --start 2024-01-01 --end 2024-03-01``;
see docs/data.md.
"""
