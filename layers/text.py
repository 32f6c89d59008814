"""Text from users, checked at the edge and made safe for the formats that carry it.

XML 1.0 (Open311's ``.xml``, KML, XLSX) cannot hold C0 control characters other than tab,
line feed and carriage return, nor lone UTF-16 surrogates (which JSON's ``\\ud800`` escapes
can smuggle into a Python string), and PostgreSQL text cannot hold NUL. New text with them
is refused; text already stored (an old import, a database restored from elsewhere) is
written out with each one replaced by U+FFFD, so one bad record never breaks a whole feed.
"""

from __future__ import annotations

import re
from typing import Any

_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
REPLACEMENT = "\ufffd"
# A user's value quoted in an error message is cut to this many characters: enough to find
# the cell or field, too few to carry a file's content back out.
QUOTE_LIMIT = 40


def unsafe_character(text: str) -> str | None:
    """A description of the first character ``text`` may not hold, or None when it is clean.

    >>> unsafe_character("占道经营\\n三个摊位")
    >>> unsafe_character("bell\\x07")
    'U+0007 as character 5'
    """
    found = _UNSAFE.search(text)
    return None if found is None else f"U+{ord(found.group()):04X} as character {found.start() + 1}"


def xml_safe(text: str, replacement: str = REPLACEMENT) -> str:
    """``text`` with every character XML 1.0 cannot carry replaced (by U+FFFD, or as asked).

    >>> xml_safe("a\\x00b\\x1bc"), xml_safe("a\\x00b", "")
    ('a\\ufffdb\\ufffdc', 'ab')
    """
    return _UNSAFE.sub(replacement, text)


def quoted(value: Any) -> str:
    """A user's value for an error message: quoted, at most ``QUOTE_LIMIT`` characters (then
    an ellipsis), control characters escaped. Every error quoting a user's value uses this.

    >>> quoted("a\\nb")
    "'a\\\\nb'"
    >>> len(quoted("x" * 1000))
    43
    """
    text = value if isinstance(value, str) else str(value)
    if len(text) > QUOTE_LIMIT:
        text = text[:QUOTE_LIMIT] + "…"
    return repr(text)
