"""cruijff.gcpause: no cycle collection inside the block; after it, collection resumes, and a
block that ends its command leaves what it made out of every later collection."""

from __future__ import annotations

import gc

from cruijff.gcpause import paused_gc


def test_the_collector_is_paused_inside_and_resumes_after_nested_blocks():
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outermost block resumes it, not the inner one
    assert gc.isenabled()


def test_a_block_to_the_end_leaves_what_it_made_out_of_later_collections():
    before = gc.get_freeze_count()
    try:
        with paused_gc(to_the_end=True):
            made = [[i] for i in range(10_000)]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= before + len(made)  # never walked again
    finally:
        gc.unfreeze()  # the rest of the test session collects as before
