"""The benchmark text generator makes varied, mostly non-repeating business scopes."""

from __future__ import annotations

import re
import statistics

from bench.textgen import ScopeGen, class_products

_BLOCK = re.compile(r"[\u4E00-\u9FD5a-zA-Z0-9+#&\._%\-]+")  # the runs jieba cuts (and the tokenizer caches)


def test_scopes_rarely_repeat_and_vary_in_shape():
    gen = ScopeGen(5)
    scopes = [gen.scope("2511" if i % 2 else None) for i in range(5000)]
    assert len(set(scopes)) == len(scopes)
    blocks = [b for s in scopes for b in _BLOCK.findall(s)]
    assert len(set(blocks)) / len(blocks) > 0.3  # the tokenizer's block cache misses most of the time
    lengths = [len(s) for s in scopes]
    assert min(lengths) < 20 and max(lengths) > 300 and 40 < statistics.median(lengths) < 200
    assert sum("许可项目：" in s for s in scopes) > 1000 and sum("一般项目：" in s for s in scopes) > 1000
    for sep in ("；", "，", "、", ";"):
        assert sum(sep in s for s in scopes) > 100


def test_same_seed_same_text_and_products_come_from_the_industry_table():
    assert ScopeGen(1).scope("0111") == ScopeGen(1).scope("0111")
    by_div, stems = class_products()
    assert "稻谷" in by_div["01"] and len(stems) > 800
    assert ScopeGen(2).enterprise_interests() and ScopeGen(2).resident_interests()
