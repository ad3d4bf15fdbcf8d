"""make chaos: the clean and the faulted replay of the same candles, and their comparison."""
