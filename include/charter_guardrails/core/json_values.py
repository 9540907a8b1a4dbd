"""Values made JSON-safe: what checks write into results and messages, without importing numpy."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

#: What a ``special`` conversion returns for a value it leaves to the generic rules.
GENERIC = object()


def json_safe(value: Any, special: Callable[[Any], Any] | None = None) -> Any:
    """``value`` as plain JSON: mappings with string keys, lists, finite numbers, strings, booleans and None.

    numpy and pandas scalars become Python numbers, non-finite floats ``None``, dates their ISO form and
    anything else its ``str``. ``special`` converts a value first (at every depth) unless it returns
    :data:`GENERIC`.
    """
    if special is not None:
        converted = special(value)
        if converted is not GENERIC:
            return converted
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, special) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v, special) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    item = getattr(value, "item", None)  # numpy scalar
    if callable(item):
        return json_safe(item(), special)
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return isoformat()
    return str(value)
