"""Reference tables shipped with the package: administrative regions (统计用区划代码) and the
GB/T 4754-2017 industry classification.  Loaded once per file path and shared; a newer table
replaces the shipped one through configuration (``regions_csv``, ``industries_csv``)."""

from ._tables import *  # noqa: F403
from ._tables import __all__ as _tables_all

__all__ = sorted(_tables_all)
