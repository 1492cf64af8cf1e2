"""`policy-push match`: the offline matcher reproduces the sample's expected pairs exactly."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from policy_push.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
EVAL_DAY = "2026-11-26"


def _expected() -> dict[tuple[str, str], str]:
    lines = (SAMPLE / "expected.jsonl").read_text(encoding="utf-8").splitlines()
    return {(x["policy_id"], x["profile_id"]): x["expected"] for x in map(json.loads, lines)}


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, Any]], str]:
    code = main(["match", *args])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def _sample_args(*extra: str) -> list[str]:
    return [
        "--policies", str(SAMPLE / "policies.jsonl"),
        "--enterprises", str(SAMPLE / "enterprises.jsonl"),
        "--residents", str(SAMPLE / "residents.jsonl"),
        "--date", EVAL_DAY, *extra,
    ]


@pytest.fixture(scope="module")
def sample_output() -> tuple[int, list[dict[str, Any]], str]:
    # run once for the module; capsys is per test
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["match", *_sample_args()])
    return code, [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def test_reproduces_expected_pairs_exactly(sample_output: tuple[int, list[dict[str, Any]], str]) -> None:
    code, records, _ = sample_output
    assert code == 0
    got = {(r["policy_id"], r["profile_id"]): "eligible" if r["eligible"] else "unknown" for r in records}
    assert len(got) == len(records)  # no pair twice
    assert got == _expected()


def test_records_are_formats_md_match_records(sample_output: tuple[int, list[dict[str, Any]], str]) -> None:
    _, records, _ = sample_output
    for r in records:
        assert list(r) == ["policy_id", "profile_id", "eligible", "score", "reasons", "missing"]
        assert 0.0 <= r["score"] <= 1.0
        assert bool(r["missing"]) is (not r["eligible"])


def test_reasons_name_the_profiles_real_values(sample_output: tuple[int, list[dict[str, Any]], str]) -> None:
    _, records, _ = sample_output
    enterprises = {e["id"]: e for e in map(json.loads, (SAMPLE / "enterprises.jsonl").read_text(encoding="utf-8").splitlines())}
    rec = next(r for r in records if r["policy_id"] == "pj-gxj-2026-012")
    qualifications = enterprises[rec["profile_id"]]["qualifications"]
    assert any("专精特新中小企业" in line for line in rec["reasons"]) and "专精特新中小企业" in qualifications
    assert any(line.startswith("注册地 ") and "盘锦市" in line for line in rec["reasons"])
    rating = enterprises[rec["profile_id"]]["tax_credit_rating"]
    assert any(line.startswith(f"纳税信用等级 {rating} ") for line in rec["reasons"])
    unknown = next(r for r in records if not r["eligible"])
    assert any(line.startswith("缺少：") for line in unknown["reasons"])


def test_order_is_policy_file_order_then_score_then_unknown(sample_output: tuple[int, list[dict[str, Any]], str]) -> None:
    _, records, _ = sample_output
    policy_order = [json.loads(line)["id"] for line in (SAMPLE / "policies.jsonl").read_text(encoding="utf-8").splitlines()]
    seen = list(dict.fromkeys(r["policy_id"] for r in records))
    assert seen == [p for p in policy_order if p in seen]
    for pid in seen:
        mine = [r for r in records if r["policy_id"] == pid]
        flags = [r["eligible"] for r in mine]
        assert flags == sorted(flags, reverse=True)  # every eligible before every unknown
        scores = [r["score"] for r in mine if r["eligible"]]
        assert scores == sorted(scores, reverse=True)


def test_top_k_and_min_score_cut_each_policy(capsys: pytest.CaptureFixture[str]) -> None:
    code, records, _ = _run(capsys, *_sample_args("--top-k", "3", "--min-score", "0.05", "--quiet"))
    assert code == 0
    per_policy: dict[tuple[str, bool], int] = {}
    for r in records:
        key = (r["policy_id"], r["eligible"])
        per_policy[key] = per_policy.get(key, 0) + 1
        assert not r["eligible"] or r["score"] >= 0.05
    assert max(per_policy.values()) == 3


def test_bad_lines_go_to_stderr_with_line_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = (SAMPLE / "residents.jsonl").read_text(encoding="utf-8").splitlines()[:5]
    bad = tmp_path / "residents.jsonl"
    broken = json.loads(lines[1])
    broken["id_number"] = broken["id_number"][:-1] + ("0" if broken["id_number"][-1] != "0" else "1")
    bad.write_text("\n".join([lines[0], json.dumps(broken, ensure_ascii=False), "not json", lines[2], lines[0]]) + "\n", encoding="utf-8")
    code, records, err = _run(
        capsys, "--policies", str(SAMPLE / "policies.jsonl"), "--residents", str(bad), "--date", EVAL_DAY, "--quiet"
    )
    assert code == 1
    assert f"{bad}:2 ({broken['id']}): id_number:" in err
    assert f"{bad}:3: (line): invalid JSON" in err
    assert f"{bad}:5" in err and "duplicate id" in err
    assert {r["profile_id"] for r in records} <= {json.loads(lines[0])["id"], json.loads(lines[2])["id"]}
    assert all(r["policy_id"].startswith(("pj-", "ln-")) for r in records)
    assert "@" not in "".join(json.dumps(r) for r in records)


def test_needs_profiles_and_existing_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["match", "--policies", str(SAMPLE / "policies.jsonl")]) == 2
    assert "--enterprises, --residents or both" in capsys.readouterr().err
    assert main(["match", "--policies", str(tmp_path / "nope.jsonl"), "--residents", str(SAMPLE / "residents.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["match", "--policies", "p", "--residents", "r", "--date", "26/11/2026"])
