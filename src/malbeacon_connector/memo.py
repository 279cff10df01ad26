"""Memoisation bounded by size: values repeat across a response's records, so each distinct
short one is checked once; long ones are checked every time and never kept."""

import functools
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
MEMO_ENTRIES = 8192
MEMO_KEY_CHARS = 256  # at most MEMO_ENTRIES x MEMO_KEY_CHARS characters kept per function


def short_memo(function: Callable[[str], T]) -> Callable[[str], T]:
    """`function` memoised for texts of at most MEMO_KEY_CHARS characters (least recently used out)."""
    cached = functools.lru_cache(maxsize=MEMO_ENTRIES)(function)

    @functools.wraps(function)
    def memoised(text: str) -> T:
        return cached(text) if len(text) <= MEMO_KEY_CHARS else function(text)

    memoised.cache_info = cached.cache_info  # type: ignore[attr-defined]
    memoised.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
    return memoised
