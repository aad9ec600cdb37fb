"""The daemon's garbage-collector setting: the young generation is collected less often
than Python's default, the older generations as usual."""

from __future__ import annotations

import gc

from monitord import daemon


def test_the_young_generation_threshold_is_raised_and_the_others_kept() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 7, 9)
        daemon._tune_collector()
        assert gc.get_threshold() == (daemon.YOUNG_GENERATION_THRESHOLD, 7, 9)
        assert daemon.YOUNG_GENERATION_THRESHOLD > 700
    finally:
        gc.set_threshold(*before)
