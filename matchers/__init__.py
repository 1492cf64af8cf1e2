"""The matching engine: criteria compiled to vectorised masks with reasons, Chinese text
tokenised with jieba, a field-weighted BM25 text index, feedback, and ranking.  Plain synchronous code over numpy arrays;
it never imports the application.

Public API (one engine per audience; see ``MatchEngine`` for the full story)::

    regions = Hierarchy.from_pairs(rows)            # (code, parent_code, name) from regions.csv
    tokenizer = Tokenizer()                         # jieba + shipped policy dictionary, once
    engine = MatchEngine("enterprise", regions, industries, tokenizer, n_jobs=2).fit(records)
    engine.set_policies(policies)                   # catalogue for profile -> policies
    engine.match_policy(policy, on=today, top_k=100)        # PolicyMatches
    engine.match_profile(profile_id_or_record, on=today)    # ProfileMatches
    engine.upsert(record); engine.remove(profile_id)        # incremental
    engine.record_feedback(profile_id, policy_id, "useful")  # 有用 / 已申报 / 不相关 teach the ranking
    engine.save(path); MatchEngine.load(path, regions, industries, tokenizer)

``compile_criteria(tree, audience)`` validates a criteria tree (``CriteriaError`` with a path).
``MatchRecord.message_reason()`` is the one line a message may quote; ``Reason.sensitive`` marks
lines that must stay out of messages and public pages; ``field_label("tags")`` names a field.
docs/ranking.md explains the ranking; ``Ranking`` holds its parameters.
"""

from ._bulk import EngineBuilder as EngineBuilder
from ._bulk import RowChunk as RowChunk
from ._bulk import encode_rows as encode_rows
from ._criteria import *  # noqa: F403
from ._criteria import __all__ as _criteria_all
from ._engine import *  # noqa: F403
from ._engine import __all__ as _engine_all
from ._errors import *  # noqa: F403
from ._errors import __all__ as _errors_all
from ._feedback import FEEDBACK_KINDS as FEEDBACK_KINDS
from ._feedback import FeedbackEvent as FeedbackEvent
from ._fields import *  # noqa: F403
from ._fields import __all__ as _fields_all
from ._hierarchy import *  # noqa: F403
from ._hierarchy import __all__ as _hierarchy_all
from ._indexing import TextStats as TextStats
from ._indexing import profile_text as profile_text
from ._policy_matching import PolicyStream as PolicyStream
from ._ranking import Ranking as Ranking
from ._ranking import clean_scope as clean_scope
from ._reasons import is_sensitive as is_sensitive
from ._records import *  # noqa: F403
from ._records import __all__ as _records_all
from ._text import *  # noqa: F403
from ._text import __all__ as _text_all

__all__ = sorted(
    [
        *_criteria_all,
        *_engine_all,
        *_errors_all,
        *_fields_all,
        *_hierarchy_all,
        *_records_all,
        *_text_all,
        "EngineBuilder",
        "FEEDBACK_KINDS",
        "FeedbackEvent",
        "RowChunk",
        "encode_rows",
        "Ranking",
        "clean_scope",
        "is_sensitive",
        "PolicyStream",
        "TextStats",
        "profile_text",
    ]
)
