"""The exception hierarchy of ``tradecore.errors`` and the mapping of failures onto it.

A Rust panic must reach Python as ``InternalError`` (never as pyo3's ``PanicException``, which
is a ``BaseException`` that ``except Exception`` would not catch); this is proven through the
test hook ``tradecore._core._panic_for_tests``, which panics inside the same guard every entry
point uses. A fresh interpreter is used where the panic message would clutter the output.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from decimal import Decimal

import pytest
import tradecore
from tradecore import OrderBook
from tradecore.errors import InternalError, InvariantError, OffGridError, TradecoreError


def test_hierarchy() -> None:
    assert issubclass(InternalError, TradecoreError) and issubclass(InternalError, RuntimeError)
    assert issubclass(InvariantError, TradecoreError) and issubclass(InvariantError, RuntimeError)
    assert issubclass(OffGridError, TradecoreError) and issubclass(OffGridError, ValueError)
    assert issubclass(TradecoreError, Exception)
    assert tradecore.InternalError is InternalError
    assert tradecore.errors.OffGridError is OffGridError


def test_rust_panic_becomes_internal_error() -> None:
    with pytest.raises(InternalError, match=r"\(a Rust panic was caught\): boom 42") as info:
        tradecore._core._panic_for_tests("boom 42")
    assert isinstance(info.value, RuntimeError)
    assert type(info.value).__name__ == "InternalError"


def test_panic_is_catchable_as_exception_in_a_fresh_interpreter() -> None:
    code = (
        "import tradecore\n"
        "try:\n"
        "    tradecore._core._panic_for_tests('from the child')\n"
        "except Exception as exc:\n"
        "    print(type(exc).__module__, type(exc).__name__, exc)\n"
        "else:\n"
        "    print('no exception')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("tradecore.errors InternalError internal error"), proc.stdout
    assert "from the child" in proc.stdout


def test_check_invariants_passes_on_a_consistent_book() -> None:
    book = OrderBook(capacity=50)
    for i in range(1, 40):
        book.submit(i, i % 3, "BUY" if i % 2 else "SELL", 100 + (i % 7) * (1 if i % 2 else -1), i)
        book.check_invariants()
    assert book.check_invariants() is None


def test_argument_errors_are_builtin_types_with_notes() -> None:
    book = OrderBook(capacity=10)
    with pytest.raises(ValueError, match="order_id must not be negative") as info:
        book.cancel(-1)
    assert not isinstance(info.value, TradecoreError)
    assert "while processing 'order_id'" in " ".join(getattr(info.value, "__notes__", []))


def test_off_grid_error_carries_value_and_grid_and_pickles() -> None:
    err = OffGridError("price", Decimal("1.005"), Decimal("0.01"))
    assert str(err) == "price 1.005 is off the grid: it must be a whole multiple of 0.01"
    assert (err.what, err.value, err.grid) == ("price", Decimal("1.005"), Decimal("0.01"))
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is OffGridError and str(back) == str(err) and back.grid == err.grid
