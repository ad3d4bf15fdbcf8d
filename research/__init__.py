"""Research tools: historical candles for the backtester and the simulator."""
