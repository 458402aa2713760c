"""The server exempts its startup heap from garbage collections, and gives it back."""

from __future__ import annotations

import gc

from eq_backend.heap import freeze_startup_heap, thaw_heap


def test_startup_heap_is_frozen_then_thawed() -> None:
    freeze_startup_heap()
    try:
        assert gc.get_freeze_count() > 0
    finally:
        thaw_heap()
    assert gc.get_freeze_count() == 0
