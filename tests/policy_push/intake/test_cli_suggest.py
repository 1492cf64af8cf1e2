"""``policy-push suggest`` as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policy_push.cli import main
from policy_push.domain import parse_policy

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "policies.jsonl"


def test_one_line_per_policy_with_sourced_suggestions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()[:5]
    stripped = []
    for line in lines:
        record = json.loads(line)
        stripped.append({k: record[k] for k in ("id", "title", "text", "published_on")})
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in stripped) + "\n", encoding="utf-8")
    assert main(["suggest", "--policies", str(path)]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["id"] for o in out] == [r["id"] for r in stripped]
    for record, source in zip(out, stripped, strict=True):
        suggestions = record.pop("suggestions")
        parse_policy(record)
        assert record["audience"] == "enterprise" and record["criteria"]
        for s in suggestions:
            assert {"id", "field", "value", "sentence", "confidence", "applied"} <= set(s)
            if s["span"]:
                assert source["text"][s["span"][0] : s["span"][1]]


def test_bad_lines_are_named_and_the_rest_still_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "ok-1", "title": "通知", "text": "在盘锦市注册的小微企业。"}\nnot json\n{"id": "no-title"}\n'
                    '{"id": "bad id!", "title": "通知"}\n', encoding="utf-8")
    assert main(["suggest", "--policies", str(path)]) == 1
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1
    err = captured.err.splitlines()
    assert err[0].startswith(f"{path}:2: invalid JSON")
    assert err[1] == f"{path}:3 (no-title): title: a policy record needs a title (a non-empty string)"
    assert err[2].startswith(f"{path}:4 (bad id!): id:")


def test_missing_file_and_unknown_city_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["suggest", "--policies", str(tmp_path / "none.jsonl")]) == 2
    path = tmp_path / "in.jsonl"
    path.write_text('{"title": "通知"}\n', encoding="utf-8")
    assert main(["suggest", "--policies", str(path), "--city", "999999"]) == 2
    assert "not in the regions table" in capsys.readouterr().err
