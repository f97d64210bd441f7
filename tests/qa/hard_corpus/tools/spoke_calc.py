"""Spoke length calculator used at the Fernhollow wheel-building bench.

All lengths are in millimetres. The result is rounded to the nearest whole
millimetre, because the bench spoke cutter only cuts in 1 mm steps.

Typical use::

    >>> spoke_length(erd=602, flange_diameter=58, centre_to_flange=35)
    292
"""

from __future__ import annotations

import math

DEFAULT_SPOKES = 32
"""Spoke count used when none is given: all adult Fernhollow wheels are 32-hole."""

DEFAULT_CROSSES = 3
"""Lacing pattern used when none is given (3-cross)."""

MAX_TENSION_N = 1250
"""Highest spoke tension we allow on the drive side, in newtons (about 127 kgf).
Rims from Kessock Alloy are rated to 1300 N; we keep a margin below that."""

MIN_TENSION_N = 700
"""Lowest acceptable tension on the non-drive side of a dished rear wheel, in newtons."""


def spoke_length(erd: float, flange_diameter: float, centre_to_flange: float,
                 spokes: int = DEFAULT_SPOKES, crosses: int = DEFAULT_CROSSES,
                 hole_diameter: float = 2.6) -> float:
    """Return the spoke length in millimetres for one side of a wheel.

    ``erd`` is the effective rim diameter, ``flange_diameter`` the diameter of
    the hub flange's spoke-hole circle and ``centre_to_flange`` the distance
    from the hub's centre line to that flange, all in millimetres. The default
    spoke-hole diameter of 2.6 mm matches the hubs from Ostwald Components.
    """
    r_rim = erd / 2
    r_hub = flange_diameter / 2
    angle = 2 * math.pi * crosses / (spokes / 2)
    length = math.sqrt(r_rim ** 2 + r_hub ** 2 + centre_to_flange ** 2
                       - 2 * r_rim * r_hub * math.cos(angle))
    return round(length - hole_diameter / 2)


def check_tension(newtons: float, drive_side: bool = True) -> bool:
    """True if ``newtons`` is within our limits for that side of the wheel.

    Drive side: at most MAX_TENSION_N. Non-drive side: at least MIN_TENSION_N.
    """
    if drive_side:
        return newtons <= MAX_TENSION_N
    return newtons >= MIN_TENSION_N
