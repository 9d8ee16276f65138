"""Test-only models: an independent pure-Python reference order book used as the oracle."""
