"""jieba_fast's C route search cuts exactly as jieba does (the ``fast`` extra, installed by the test
extra so that CI runs this): the tokenizer may only use it if the tokens are the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.batch.cutcheck import data_texts, generated_texts
from matchers import Tokenizer
from matchers._text import _BLOCK, C_DAG_CAP, max_prefix_words

pytest.importorskip("_jieba_fast_functions_py3", reason="the fast extra (jieba_fast) is not installed")


@pytest.fixture(scope="module")
def pair() -> tuple[Tokenizer, Tokenizer]:
    fast, slow = Tokenizer(), Tokenizer(fast=False)
    assert fast.fast and not slow.fast
    return fast, slow


def test_same_cut_and_tokens_on_realistic_and_sample_text(pair: tuple[Tokenizer, Tokenizer]) -> None:
    fast, slow = pair
    texts = generated_texts(3000, seed=7) + data_texts()
    blocks = {b for t in texts for b in _BLOCK.findall(t)} | {t.split()[0] for t in fast.terms}
    assert len(blocks) > 10_000
    differ = [b for b in sorted(blocks) if fast.cut(b) != slow.cut(b)]
    assert differ == []
    assert [fast.tokens(t) for t in texts[::7]] == [slow.tokens(t) for t in texts[::7]]


def test_letters_digits_and_punctuation_in_a_block(pair: tuple[Tokenizer, Tokenizer]) -> None:
    fast, slow = pair
    for block in ["ABC123设备", "3D打印", "iPhone维修", "5G基站建设", "a", "x-ray检测", "99.9%纯度", "C++开发",
                  "研发R&D中心", "B2B电子商务", "一二三四五六七八九十", "技术开发技术咨询" * 40]:
        assert fast.cut(block) == slow.cut(block), block


def test_refused_when_a_word_has_more_prefixes_than_the_c_search_keeps(tmp_path: Path) -> None:
    # 甲乙, 甲乙丙, ... : one word with C_DAG_CAP + 1 dictionary prefixes; the C search would drop one
    chars = "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未"
    user = tmp_path / "terms.txt"
    user.write_text("\n".join(chars[:i] for i in range(2, C_DAG_CAP + 4)) + "\n", encoding="utf-8")
    tok = Tokenizer(user_dict=user)
    assert max_prefix_words(tok._jieba.FREQ) > C_DAG_CAP
    assert not tok.fast
    assert tok.cut(chars) == list(tok._jieba.cut(chars, HMM=False))
