"""JSONPath (RFC 9535 normalized-path style) for error locations in ASCMI intake requests.

>>> jsonpath(["individual", "birthDate"])
'$.individual.birthDate'
>>> jsonpath(["categories", "mental-health"])
"$.categories['mental-health']"
>>> jsonpath(["recipients", "include", 0, "name"])
'$.recipients.include[0].name'
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_SHORTHAND = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def jsonpath(parts: Iterable[str | int]) -> str:
    out = ["$"]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _SHORTHAND.match(part):
            out.append(f".{part}")
        else:
            escaped = part.replace("\\", "\\\\").replace("'", "\\'")
            out.append(f"['{escaped}']")
    return "".join(out)
