"""The matching engine: criteria compiled to vectorised masks with reasons, Chinese text
tokenised with jieba, a TF-IDF index, and ranking.  Plain synchronous code over numpy arrays;
it never imports the application."""

from ._fields import *  # noqa: F403
from ._fields import __all__ as _fields_all

__all__ = sorted(_fields_all)
