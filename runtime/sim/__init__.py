"""The simulator wing: the procedural road (road.py: renderer, track, the car's kinematics), closed-loop driving
and its judge (drive.py), and the synthetic:// sources (sources.py), which it adds to the core's source table
when it is imported (runtime's package and the commands import it)."""

from ..sources import OPENERS as _SOURCES
from .sources import open_synthetic

_SOURCES["synthetic"] = open_synthetic
