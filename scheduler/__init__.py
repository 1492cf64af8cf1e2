"""The scheduling engine: periodic ticks on APScheduler 3.11 with leader election, and pure
functions for send windows (quiet hours), the per-person frequency cap and deadline calendars.

It never imports the application: ticks are callables handed in, the lead is a pair of callables
(the app supplies PostgreSQL advisory-lock ones), and every time function takes ``now``.
"""

from ._calendar import *  # noqa: F403
from ._calendar import __all__ as _calendar_all
from ._cap import *  # noqa: F403
from ._cap import __all__ as _cap_all
from ._clock import *  # noqa: F403
from ._clock import __all__ as _clock_all
from ._leader import *  # noqa: F403
from ._leader import __all__ as _leader_all
from ._plan import *  # noqa: F403
from ._plan import __all__ as _plan_all
from ._ticks import *  # noqa: F403
from ._ticks import __all__ as _ticks_all
from ._windows import *  # noqa: F403
from ._windows import __all__ as _windows_all

__all__ = sorted(
    [*_calendar_all, *_cap_all, *_clock_all, *_leader_all, *_plan_all, *_ticks_all, *_windows_all]
)
