"""Values read out of pandas frames into records: Python scalars, and None where pandas holds
a missing value as NaN (a number column with a gap becomes float, its gaps NaN).

>>> import pandas as pd
>>> [whole(v) for v in pd.Series([3, None]).tolist()]
[3, None]
>>> text(float("nan")), number(2), text("GD04")
(None, 2.0, 'GD04')
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def missing(value: Any) -> bool:
    """Whether ``value`` is None or NaN."""
    return value is None or (isinstance(value, float | np.floating) and math.isnan(value))


def whole(value: Any) -> int | None:
    """An integer, or None for a missing value."""
    return None if missing(value) else int(value)


def number(value: Any) -> float | None:
    """A float, or None for a missing value."""
    return None if missing(value) else float(value)


def text(value: Any) -> str | None:
    """A string, or None for a missing value."""
    return None if missing(value) else str(value)
