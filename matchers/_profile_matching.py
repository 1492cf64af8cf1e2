"""Profile -> policies: the policies of the catalogue a profile (stored, or a record not
stored) is eligible for or may qualify for, ranked by score with its feedback, with reasons.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._criteria import TRUE, UNKNOWN, to_ymd
from ._errors import UnknownProfileError
from ._feedback import adjust
from ._indexing import profile_text
from ._policies import PolicyCatalogue
from ._reasons import text_reason
from ._records import MatchRecord, ProfileMatches, Reason
from ._table import DERIVED_YEARS, normalise_profile

__all__ = ["ProfileMatching"]


class ProfileMatching(PolicyCatalogue):
    """``match_profile``."""

    def match_profile(
        self,
        profile: str | Mapping[str, Any],
        *,
        on: dt.date,
        top_k: int | None = 20,
        include_unknown: bool = False,
        open_only: bool = True,
    ) -> ProfileMatches:
        """Policies of the catalogue that fit a profile (an indexed id, or a record not stored).

        Only policies whose ``apply_until`` is on or after ``on`` unless ``open_only`` is False.
        """
        self._check()
        on_ymd = to_ymd(on)
        with self._lock:
            if isinstance(profile, str):
                row = self.rows_.get(profile)
                if row is None:
                    raise UnknownProfileError(profile)
                stored, pid = self.table_.row_values(row), profile
                d_ids, d_w = self.text_.row_vector(row)
            else:
                stored, pid = normalise_profile(profile, self.audience), profile.get("id")
                terms = self._profile_terms(self._tok().tokens(profile_text(profile, self.ranking)))
                d_ids, d_w = self.text_.doc_vector(*self.text_.ids_of(terms, grow=False))
            values = dict(stored)
            for name, src in DERIVED_YEARS.items():
                if src in stored:
                    values[name] = None if stored[src] is None else (on_ymd - stored[src]) // 10000
            catalog, order, until = self.policies_.catalog()
            if not order:
                return ProfileMatches(pid, [], [])
            truth, leaf = catalog.evaluate(values)
            columns = {f: [v] for f, v in values.items()}
            matrix = self.policies_.matrix(self.text_)
            scores = (
                np.asarray(matrix[:, d_ids] @ d_w).ravel() if len(d_ids) else np.zeros(len(order), np.float32)
            )
            marks = self.feedback_.profile_vector(str(pid)) if pid is not None else {}
            if marks:
                scores = adjust(scores, self.policies_.evidence(marks))
            is_open = until >= on_ymd if open_only else np.ones(len(order), bool)
            lists = []
            for want in (TRUE, UNKNOWN) if include_unknown else (TRUE,):
                idx = np.flatnonzero((truth == want) & is_open)
                idx = idx[np.lexsort((idx, -scores[idx]))][: top_k if top_k is not None else None]
                recs = []
                for i in idx:
                    pol = order[i]
                    if pol.criteria.root is None:
                        row_i = matrix.getrow(int(i)).tocsr()
                        line = text_reason(
                            self._shared_terms((row_i.indices.astype(np.int32), row_i.data), (d_ids, d_w)),
                            self.audience.value,
                        )
                        details: list[Reason] = [line] if line else []
                        missing: list[str] = []
                        recs.append(
                            _record(pol.id, str(pid), want == TRUE, float(scores[i]), details, missing)
                        )
                    else:
                        done = self.policies_.explainer(int(i)).columns(
                            columns, 0, tuple(catalog.leaf_values(int(i), leaf))
                        )
                        recs.append(
                            MatchRecord(
                                pol.id,
                                str(pid),
                                want == TRUE,
                                float(scores[i]),
                                done.texts,
                                () if want == TRUE else done.missing,
                                done.details,
                            )
                        )
                lists.append(recs)
        return ProfileMatches(pid, lists[0], lists[1] if include_unknown else [])

    def _shared_terms(self, a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> list[str]:
        """Terms of two vectors in the index space, by their share of the cosine, largest first."""
        common, ia, ib = np.intersect1d(a[0], b[0], assume_unique=True, return_indices=True)
        share = a[1][ia] * b[1][ib]
        order = np.argsort(-share, kind="stable")
        return [self.text_.terms_[int(common[i])] for i in order if share[i] > 0]


def _record(
    policy_id: str, profile_id: str, eligible: bool, score: float, details: list[Reason], missing: list[str]
) -> MatchRecord:
    return MatchRecord(
        policy_id,
        profile_id,
        eligible,
        score,
        tuple(d.text for d in details),
        () if eligible else tuple(missing),
        tuple(details),
    )
