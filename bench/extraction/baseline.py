"""The keyword baseline the suggester is measured against, in the same run.

What a first attempt with a keyword list would do: every vocabulary term, size word, place name
of the setting and industry name that occurs anywhere in the text becomes a required condition;
the first and last full dates are the window; the largest amount after 最高 (else the largest
amount) is the benefit; the first document number is the number; the first department named is
the issuer.  No sections, no logic, no negation.
"""

from __future__ import annotations

import re
from typing import Any

from policy_push.intake.lexicon import departments, industry_names, vocabulary
from policy_push.intake.text import normalise
from policy_push.refdata import ReferenceData

__all__ = ["baseline_record"]

_DATE = re.compile(r"((?:19|20)\d{2})年(\d{1,2})月(\d{1,2})日")
_MONEY = re.compile(r"(最高)?[^0-9]{0,4}?(\d+(?:\.\d+)?)(亿元|万元|元)")
_DOC = re.compile(r"([\u4e00-\u9fff]{1,10})[〔\[(]((?:19|20)\d{2})[〕\])](\d{1,4})号")
_SCALE = {"亿元": 1e8, "万元": 1e4, "元": 1.0}


def _places(text: str, city: str, ref: ReferenceData) -> list[str]:
    table = ref.regions
    codes = [city, *[c for c, p in table.parents.items() if p == city]]
    province = table.parents.get(city, "")
    found = [c for c in codes if table.name(c) in text]
    if province and table.name(province) in text:
        found.append(province)
    return found


def baseline_record(record: dict[str, Any], city: str, ref: ReferenceData) -> dict[str, Any]:
    text = normalise(record.get("text", ""))
    title = normalise(record.get("title", ""))
    audience = "enterprise" if text.count("企业") >= 2 or "企业" in title else "resident"
    leaves: list[dict[str, Any]] = []
    places = _places(text, city, ref)
    if places:
        leaves.append({"field": "region", "op": "within", "value": places})
    kind = "qualification" if audience == "enterprise" else "tag"
    for term in vocabulary():
        if term.kind == kind and term.term in text:
            leaves.append({"field": "qualifications" if kind == "qualification" else "tags", "op": "has_any", "value": [term.term]})
    if audience == "enterprise":
        if re.search(r"中小微|中型、小型", text):
            leaves.append({"field": "size", "op": "in", "value": ["medium", "small", "micro"]})
        elif re.search(r"小微|小型、微型", text):
            leaves.append({"field": "size", "op": "in", "value": ["small", "micro"]})
        m = re.search(r"纳税信用等级[^。]{0,4}?([ABMCD])级", text)
        if m:
            leaves.append({"field": "tax_credit_rating", "op": "in", "value": [m.group(1)]})
        m = re.search(r"营业收入(\d+)万元", text)
        if m:
            leaves.append({"field": "annual_revenue_wan", "op": "gte", "value": int(m.group(1))})
        names = industry_names(ref.industries)
        codes = sorted({c for name, cs in names.items() if len(name) >= 4 and name in text for c in cs})
        if codes:
            leaves.append({"field": "industry", "op": "within", "value": codes})
    else:
        m = re.search(r"(\d+)周岁以上", text)
        if m:
            leaves.append({"field": "age", "op": "gte", "value": int(m.group(1))})
        m = re.search(r"(\d+)周岁(?:及)?以下", text)
        if m:
            leaves.append({"field": "age", "op": "lte", "value": int(m.group(1))})
    dates = [f"{y}-{int(mo):02d}-{int(d):02d}" for y, mo, d in _DATE.findall(text)]
    amounts = [(bool(top), float(n) * _SCALE[u]) for top, n, u in _MONEY.findall(text)]
    tops = [v for top, v in amounts if top]
    doc = _DOC.search(text)
    issuer = None
    for name in departments():
        m = re.search(rf"[\u4e00-\u9fff]{{0,6}}{re.escape(name)}", text)
        if m:
            issuer = m.group()
            break
    return {
        "audience": audience,
        "criteria": {"all": leaves} if leaves else None,
        "apply_from": dates[0] if dates else None,
        "apply_until": dates[-1] if len(dates) > 1 else None,
        "benefit_max_yuan": max(tops) if tops else (max(v for _, v in amounts) if amounts else None),
        "doc_number": f"{doc.group(1)}〔{doc.group(2)}〕{doc.group(3)}号" if doc else None,
        "issuer": issuer,
        "categories": [],
    }
