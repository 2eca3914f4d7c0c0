"""Title patterns: how an admin tells SLA Buddy to read a calendar event's title.

``Shift: {name}`` or ``Embedded: {name} ({product})``: ``{name}`` is one or
more engineers ("Alice & Bob"), ``{product}`` the product team. Pure text
handling; ``calendars.matching`` uses the compiled patterns with the roster.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

PLACEHOLDER = re.compile(r"\{(\w+)\}")

# Used when a source's own title_patterns is blank, by purpose ("shifts" / "embedded").
DEFAULT_TITLE_PATTERNS = {
    "shifts": ["Shift: {name}", "On call: {name}", "{name}"],
    "embedded": ["Embedded: {name} ({product})", "{name} ({product})", "Embedded ({product})"],
}


def compile_patterns(patterns: Iterable[str]) -> list[re.Pattern[str]]:
    compiled = []
    for pattern in patterns:
        names = PLACEHOLDER.findall(pattern)
        unknown = set(names) - {"name", "product"}
        if unknown:
            raise ValueError(f"Pattern {pattern!r}: use only the placeholders {{name}} and {{product}}.")
        if len(names) != len(set(names)):
            raise ValueError(f"Pattern {pattern!r}: each placeholder may appear once.")
        regex = []
        for index, part in enumerate(PLACEHOLDER.split(pattern)):
            if index % 2:
                regex.append(f"(?P<{part}>.+?)")
            else:
                # Literal text: whitespace in and around it is flexible.
                regex.append(r"\s*" + r"\s*".join(re.escape(word) for word in part.split()) + r"\s*")
        compiled.append(re.compile("".join(regex), re.IGNORECASE))
    return compiled
