"""Pausing Python's cyclic garbage collector while building large acyclic structures.

Records and STIX dicts hold no reference cycles, so the collector's passes over tens of
thousands of new containers during one enrichment are pure overhead (measured in
`bench/README.md`); reference counting still frees everything.
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic collector for the block (restored as it was, even on error)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
