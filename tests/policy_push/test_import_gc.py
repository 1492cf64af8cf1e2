"""An import raises the collector's first threshold while it runs and puts the old one back, also when
two imports overlap (``policy_push.importing._fewer_collections``)."""

from __future__ import annotations

import gc

from policy_push.importing import IMPORT_GC_THRESHOLD, _fewer_collections


def test_thresholds_come_back_after_overlapping_imports() -> None:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        with _fewer_collections():
            assert gc.get_threshold() == (IMPORT_GC_THRESHOLD, 10, 10)
            with _fewer_collections():
                assert gc.get_threshold()[0] == IMPORT_GC_THRESHOLD
            assert gc.get_threshold()[0] == IMPORT_GC_THRESHOLD  # the first import is still running
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*saved)


def test_a_failed_import_puts_the_threshold_back() -> None:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        try:
            with _fewer_collections():
                raise RuntimeError("the database went away")
        except RuntimeError:
            pass
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*saved)
