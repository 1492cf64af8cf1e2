"""Schemathesis hooks (loaded through ``SCHEMATHESIS_HOOKS``): how to generate the string formats the
OpenAPI document names beyond JSON Schema's own.

Each format is a rule the document states and JSON Schema cannot (a code of a reference table, a check
character): without a generator schemathesis would send random digits that the document itself calls
invalid, and the positive-data check would blame the server for refusing them.  The generators draw from
the same reference tables the service validates against and compute the check characters by the
standards (GB 32100-2015, GB 11643-1999) independently of the service's own code.
"""

from __future__ import annotations

import datetime as dt

import schemathesis
from hypothesis import strategies as st

from policy_push.refdata import load_reference_data

_REF = load_reference_data()
_REGIONS = sorted(_REF.regions.names)
_COUNTIES = [code for code in _REGIONS if len(code) == 6 and not code.endswith("00")]
_INDUSTRIES = sorted(_REF.industries.names)

_USCC = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _uscc(body: str) -> str:
    total = sum(_USCC.index(c) * w for c, w in zip(body, _USCC_WEIGHTS, strict=True))
    return body + _USCC[(31 - total % 31) % 31]


def _id_number(parts: tuple[str, dt.date, int]) -> str:
    county, born, serial = parts
    body = f"{county}{born:%Y%m%d}{serial:03d}"
    total = sum(int(c) * w for c, w in zip(body, _ID_WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


_PAST = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date.today() - dt.timedelta(days=1))

schemathesis.openapi.format("gb2260-region", st.sampled_from(_REGIONS))
schemathesis.openapi.format("gb4754-industry", st.sampled_from(_INDUSTRIES))
schemathesis.openapi.format("gb32100-uscc", st.text(_USCC, min_size=17, max_size=17).map(_uscc))
schemathesis.openapi.format(
    "gb11643-id-number",
    st.tuples(st.sampled_from(_COUNTIES), _PAST, st.integers(0, 999)).map(_id_number),
)
schemathesis.openapi.format("past-date", _PAST.map(dt.date.isoformat))
schemathesis.openapi.format(
    "future-date-time",
    st.integers(3600, 90 * 86400).map(
        lambda s: (dt.datetime.now(dt.timezone(dt.timedelta(hours=8))) + dt.timedelta(seconds=s)).isoformat()
    ),
)
