"""Data: the cache format, the synthetic generator and the preprocessors (DESIGN §3)."""
