"""Named places in a policy text resolved to region codes through the shipped regions table.

A name can mean several places (铁东区 is in 鞍山 and in 四平; 新兴镇 exists in many counties), so
every name is resolved in a setting: the policy's own place (from its issuer or title) and the
configured city.  Townships are only taken inside that setting; counties and cities elsewhere only
when the name is unique in the country.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from policy_push.refdata import CodeTable

from .lexicon import read_rows

__all__ = ["Gazetteer", "PlaceMention", "Setting", "gazetteer"]

_SUFFIXES = ("自治州", "地区", "盟", "市", "省", "自治区")
_ZONE_ABBREVIATIONS = (
    ("高新技术产业开发区", ("高新区", "高新技术开发区")),
    ("经济技术开发区", ("经开区", "经济开发区")),
    ("经济开发区", ("经开区",)),
)
#: what follows a place name when it is part of an organisation's or a document's name
_ORG_TAIL = re.compile(
    r"^[^,，。、;；:：()（）《》\s]{0,14}?(?:局|厅|委员会|委|办公室|办|中心|平台|条例|办法|APP|银行|分行|公司|协会|学会|"
    r"大学|学院|医院|管委会|管理委员会|政府|联合会|总工会|工会|分局|专区|热线|网站|窗口|品牌|大米|河蟹|片区管委)"
)
_LOCAL_WORDS = {
    "city": re.compile(r"本市|全市|我市|市内|市域|市辖区"),
    "province": re.compile(r"本省|全省|我省|省内|省域"),
    "county": re.compile(r"本区|全区|我区|本县|全县|我县|区内|县内|辖区"),
}


@dataclass(frozen=True, slots=True)
class PlaceMention:
    code: str
    name: str  #: as written in the text
    start: int  #: offsets within the searched string
    end: int
    confidence: float


@dataclass(frozen=True, slots=True)
class Setting:
    """Where a policy is read: its city (and province), and the county when its issuer is one."""

    city: str
    province: str
    county: str | None = None


class Gazetteer:
    def __init__(self, regions: CodeTable, extra: list[tuple[str, str]] | None = None) -> None:
        self.regions = regions
        self.by_name: dict[str, set[str]] = defaultdict(set)
        #: names that stand for a place only inside the setting (short county names)
        self.local_only: dict[str, set[str]] = defaultdict(set)
        for code, name in regions.names.items():
            level = regions.levels.get(code, "")
            self.by_name[name].add(code)
            if level in ("province", "city"):
                for suffix in _SUFFIXES:
                    if name.endswith(suffix) and len(name) - len(suffix) >= 2:
                        self.by_name[name[: -len(suffix)]].add(code)
                        break
            elif level == "county" and len(name) >= 3 and name[-1] in "区县旗" and not name.endswith("新区"):
                self.local_only[name[:-1]].add(code)
            for long, shorts in _ZONE_ABBREVIATIONS:
                if long in name:
                    city = regions.parents.get(code, "")
                    variants = {name, name.replace("市" + long, long)}
                    for v in list(variants):
                        variants.update(v.replace(long, s) for s in shorts)
                    for v in variants - {name}:
                        self.by_name[v].add(code)
                    del city
        for name, code in extra or ():
            if code in regions:
                self.by_name[name].add(code)
        self.max_len = max(len(n) for n in self.by_name)

    # -- resolution -----------------------------------------------------------------------------
    def _pick(self, codes: set[str], setting: Setting, *, local_only: bool) -> tuple[str, float] | None:
        inside = lambda anc: sorted(c for c in codes if self.regions.is_within(c, anc))  # noqa: E731
        anchors = [a for a in (setting.county, setting.city, setting.province) if a]
        # the setting itself or one of the places containing it
        above = set(anchors) | {p for a in anchors for p in self.regions.ancestors(a)}
        own = sorted(codes & above)
        if len(own) == 1:
            return own[0], 0.95
        for anchor, conf in ((setting.county, 0.95), (setting.city, 0.95), (setting.province, 0.85)):
            if anchor:
                found = inside(anchor)
                if len(found) == 1:
                    return found[0], conf
        if local_only:
            return None
        broad = [c for c in codes if self.regions.levels.get(c) in ("province", "city", "county")]
        if len(codes) == 1 and broad:
            return broad[0], 0.8
        return None

    def resolve(self, name: str, setting: Setting) -> tuple[str, float] | None:
        """The code ``name`` stands for in ``setting`` and how sure that is, or None."""
        codes = self.by_name.get(name)
        if codes:
            return self._pick(codes, setting, local_only=False)
        codes = self.local_only.get(name)
        if codes:
            return self._pick(codes, setting, local_only=True)
        return None

    def find(self, text: str, setting: Setting) -> list[PlaceMention]:
        """Every place named in ``text`` that resolves in ``setting``, longest names first."""
        out: list[PlaceMention] = []
        i = 0
        while i < len(text):
            hit = None
            for length in range(min(self.max_len, len(text) - i), 1, -1):
                name = text[i : i + length]
                if name in self.by_name or name in self.local_only:
                    resolved = self.resolve(name, setting)
                    if resolved:
                        hit = (name, *resolved)
                        break
            if hit:
                name, code, conf = hit
                end = i + len(name)
                if not _ORG_TAIL.match(text[end:]) and not _inside_title(text, i):
                    out.append(PlaceMention(code, name, i, end, conf))
                i = end
                continue
            i += 1
        for level, pattern in _LOCAL_WORDS.items():
            code = {"city": setting.city, "province": setting.province, "county": setting.county}[level]
            if not code:
                continue
            for m in pattern.finditer(text):
                if any(p.start <= m.start() < p.end for p in out) or _ORG_TAIL.match(text[m.end():]):
                    continue
                out.append(PlaceMention(code, m.group(), m.start(), m.end(), 0.8))
        return sorted(out, key=lambda p: p.start)

    def setting_for(self, *texts: str, default_city: str) -> Setting:
        """The setting of a policy: the most specific place its issuer or title names inside
        the configured city's province, else the configured city."""
        default = self.regions.ancestors(default_city)
        province = next((c for c in [default_city, *default] if self.regions.levels.get(c) == "province"), default_city)
        base = Setting(city=default_city, province=province)
        best: tuple[int, str] | None = None
        for text in texts:
            if not text:
                continue
            for mention in self.find(text, base) + self._org_places(text, base):
                depth = len(self.regions.ancestors(mention.code))
                if best is None or depth > best[0]:
                    best = (depth, mention.code)
        if best is None:
            return base
        code = best[1]
        chain = [code, *self.regions.ancestors(code)]
        levels = {self.regions.levels.get(c): c for c in chain}
        return Setting(
            city=levels.get("city", default_city if levels.get("province", province) == province else code),
            province=levels.get("province", province),
            county=levels.get("township") or levels.get("county"),
        )

    def _org_places(self, text: str, setting: Setting) -> list[PlaceMention]:
        """Places at the start of an organisation's name ("盘锦市民政局"), which :meth:`find` skips."""
        out = []
        for length in range(min(self.max_len, len(text)), 1, -1):
            name = text[:length]
            if name in self.by_name or name in self.local_only:
                resolved = self.resolve(name, setting)
                if resolved is None:
                    # a name unique in the whole country counts even outside the setting
                    codes = self.by_name.get(name, set())
                    resolved = (next(iter(codes)), 0.8) if len(codes) == 1 else None
                if resolved:
                    out.append(PlaceMention(resolved[0], name, 0, length, resolved[1]))
                    break
        return out


def _inside_title(text: str, at: int) -> bool:
    """True when ``at`` lies inside 《…》 (the name of another document)."""
    opened = text.rfind("《", 0, at)
    return opened != -1 and text.rfind("》", opened, at) == -1


_BUILT: dict[tuple[str, int], Gazetteer] = {}


def gazetteer(regions: CodeTable) -> Gazetteer:
    """One gazetteer per regions table (building it reads 44,000 names)."""
    key = (regions.source, len(regions))
    if key not in _BUILT:
        extra = [(row[0], row[1]) for row in read_rows("places.tsv") if len(row) >= 2]
        _BUILT[key] = Gazetteer(regions, extra)
    return _BUILT[key]
