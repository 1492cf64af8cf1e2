"""The match index of the service (``MatchService``) and offline matching of JSONL files.

``matchers`` is the engine (criteria, TF-IDF, ranking); this package feeds it from the
database, keeps it current on every write, persists it under ``data_dir/index`` so a restart
never re-cuts unchanged text, and shapes its answers for campaigns and the API.
"""

from .engines import AUDIENCES, CountingTokenizer, Hierarchies, shared_tokenizer
from .index_store import IndexStore, database_key
from .offline import RejectedLine, match_records, read_jsonl
from .results import HISTOGRAM_BINS, PolicyMatchResult, score_histogram
from .service import MatchService, StartReport
from .service_state import ProgressFn

__all__ = [
    "AUDIENCES",
    "HISTOGRAM_BINS",
    "CountingTokenizer",
    "Hierarchies",
    "IndexStore",
    "MatchService",
    "PolicyMatchResult",
    "ProgressFn",
    "RejectedLine",
    "StartReport",
    "database_key",
    "match_records",
    "read_jsonl",
    "score_histogram",
    "shared_tokenizer",
]
