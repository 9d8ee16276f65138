"""Shared pytest fixtures (kept minimal: each test module builds what it needs)."""

from __future__ import annotations

import pytest
from tradecore import OrderBook


@pytest.fixture
def book() -> OrderBook:
    """An empty book with room for 1,000 resting orders."""
    return OrderBook(capacity=1_000)
