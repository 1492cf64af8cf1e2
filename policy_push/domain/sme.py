"""Enterprise size by the 2011 SME classification standard (工信部联企业〔2011〕300号).

Medium and small sizes need *all* of their lower bounds ("且"); an enterprise that meets none
of the size bounds is micro.  "Large" starts at the upper bound of medium on every indicator
the industry group uses.  The size is unknown (None) when a figure the group uses is missing,
or when the industry code is too coarse to tell the group (a bare section "F" could be
wholesale or retail).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from policy_push.refdata import CodeTable

__all__ = ["SME_GROUPS", "SmeGroup", "derive_size", "sme_group_for"]

# X = employees (人), Y = annual revenue (万元), Z = total assets (万元)
_FIGURE_FIELDS = {"X": "employees", "Y": "annual_revenue_wan", "Z": "total_assets_wan"}


@dataclass(frozen=True, slots=True)
class SmeGroup:
    key: str
    name: str
    #: lower bounds for large, medium, small, in that order
    bounds: tuple[tuple[str, Mapping[str, float]], ...]

    @property
    def figures(self) -> tuple[str, ...]:
        """The profile fields this group's thresholds use."""
        used = {k for _, b in self.bounds for k in b}
        return tuple(_FIGURE_FIELDS[k] for k in "XYZ" if k in used)


def _g(key: str, name: str, large: dict[str, float], medium: dict[str, float], small: dict[str, float]) -> SmeGroup:
    return SmeGroup(key, name, (("large", large), ("medium", medium), ("small", small)))


SME_GROUPS: dict[str, SmeGroup] = {
    g.key: g
    for g in (
        _g("agriculture", "农、林、牧、渔业", {"Y": 20000}, {"Y": 500}, {"Y": 50}),
        _g("industry", "工业", {"X": 1000, "Y": 40000}, {"X": 300, "Y": 2000}, {"X": 20, "Y": 300}),
        _g("construction", "建筑业", {"Y": 80000, "Z": 80000}, {"Y": 6000, "Z": 5000}, {"Y": 300, "Z": 300}),
        _g("wholesale", "批发业", {"X": 200, "Y": 40000}, {"X": 20, "Y": 5000}, {"X": 5, "Y": 1000}),
        _g("retail", "零售业", {"X": 300, "Y": 20000}, {"X": 50, "Y": 500}, {"X": 10, "Y": 100}),
        _g("transport", "交通运输业", {"X": 1000, "Y": 30000}, {"X": 300, "Y": 3000}, {"X": 20, "Y": 200}),
        _g("warehousing", "仓储业", {"X": 200, "Y": 30000}, {"X": 100, "Y": 1000}, {"X": 20, "Y": 100}),
        _g("postal", "邮政业", {"X": 1000, "Y": 30000}, {"X": 300, "Y": 2000}, {"X": 20, "Y": 100}),
        _g("accommodation", "住宿业", {"X": 300, "Y": 10000}, {"X": 100, "Y": 2000}, {"X": 10, "Y": 100}),
        _g("catering", "餐饮业", {"X": 300, "Y": 10000}, {"X": 100, "Y": 2000}, {"X": 10, "Y": 100}),
        _g("telecom", "信息传输业", {"X": 2000, "Y": 100000}, {"X": 100, "Y": 1000}, {"X": 10, "Y": 100}),
        _g("software", "软件和信息技术服务业", {"X": 300, "Y": 10000}, {"X": 100, "Y": 1000}, {"X": 10, "Y": 50}),
        _g("real_estate", "房地产开发经营", {"Y": 200000, "Z": 10000}, {"Y": 1000, "Z": 5000}, {"Y": 100, "Z": 2000}),
        _g("property_mgmt", "物业管理", {"X": 1000, "Y": 5000}, {"X": 300, "Y": 1000}, {"X": 100, "Y": 500}),
        _g("leasing", "租赁和商务服务业", {"X": 300, "Z": 120000}, {"X": 100, "Z": 8000}, {"X": 10, "Z": 100}),
        _g("other", "其他未列明行业", {"X": 300}, {"X": 100}, {"X": 10}),
    )
}

# The most specific code wins: a class or group code is looked up first, then its division,
# then its section.  Sections left out of the table fall to "other".
_BY_CODE: dict[str, str] = {
    "A": "agriculture", "B": "industry", "C": "industry", "D": "industry", "E": "construction",
    "51": "wholesale", "52": "retail",
    "53": "other", "54": "transport", "55": "transport", "56": "transport", "57": "transport", "58": "transport",
    "59": "warehousing", "60": "postal", "61": "accommodation", "62": "catering",
    "63": "telecom", "64": "telecom", "65": "software",
    "701": "real_estate", "702": "property_mgmt", "L": "leasing",
}  # fmt: skip
# Sections and divisions whose members fall into different groups: too coarse to decide.
_AMBIGUOUS = frozenset({"F", "G", "H", "I", "K", "70"})


def sme_group_for(industry: str, industries: CodeTable) -> SmeGroup | None:
    """The SME group of an industry code, or None when the code is too coarse to tell."""
    for code in (industry, *industries.ancestors(industry)):
        if code in _BY_CODE:
            return SME_GROUPS[_BY_CODE[code]]
        if code in _AMBIGUOUS:
            # "70" itself is too coarse; a finer code under it that matched nothing above
            # (7030 房地产中介服务) is one of the unlisted trades
            return None if code == industry else SME_GROUPS["other"]
    return SME_GROUPS["other"]


def derive_size(
    industry: str | None,
    figures: Mapping[str, float | int | None],
    industries: CodeTable,
) -> str | None:
    """Size ("large", "medium", "small", "micro") from the figures, or None when unknown.

    ``figures`` maps ``employees``, ``annual_revenue_wan`` and ``total_assets_wan`` to numbers or None.
    """
    if not industry:
        return None
    group = sme_group_for(industry, industries)
    if group is None:
        return None
    values: dict[str, float] = {}
    for letter, field in _FIGURE_FIELDS.items():
        if field in group.figures:
            value = figures.get(field)
            if value is None:
                return None
            values[letter] = float(value)
    for size, lower in group.bounds:
        if all(values[k] >= bound for k, bound in lower.items()):
            return size
    return "micro"
