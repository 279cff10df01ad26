"""Text from outside (the API, the platform) made safe to show and to store.

Control characters (C0, C1, DEL), format characters (bidirectional overrides, zero-width
marks) and lone UTF-16 surrogates are removed: they can rewrite an operator's terminal,
hide what a value really is, or make the text impossible to encode as UTF-8. Tabs, line
breaks and unusual spaces become plain spaces.
"""

import unicodedata

_REMOVED_CATEGORIES = {"Cc", "Cf", "Cs"}


def clean_text(text: str) -> str:
    """The text without control, format and surrogate characters (unchanged when it has none)."""
    if text.isprintable():
        return text
    return "".join(_cleaned(char) for char in text)


def _cleaned(char: str) -> str:
    if char.isprintable():
        return char
    if char.isspace():  # tabs, line breaks, separators
        return " "
    return "" if unicodedata.category(char) in _REMOVED_CATEGORIES else char
