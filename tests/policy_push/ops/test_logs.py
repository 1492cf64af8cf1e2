"""Logs: the demo run with JSON logs at DEBUG — every line parses, carries a time in the local zone, and no
line (logs or output) holds a phone number, ID number, openid or app id of the sample, or the PII key; the
demo's temporary folder is gone afterwards. And the formatter's masking on its own."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from policy_push.config import Settings
from policy_push.logs import REQUEST_ID, configure_logging, mask_personal
from policy_push.security import DEMO_PII_KEY

from .cli_run import ROOT, clean_env, cli, free_port

pytestmark = pytest.mark.slow


def _personal_values() -> set[str]:
    values: set[str] = set()
    for name in ("enterprises.jsonl", "residents.jsonl"):
        for line in (ROOT / "policy_push" / "sample" / name).read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            values.update(v for v in (record.get("contact") or {}).values() if v)
            if record.get("id_number"):
                values.add(record["id_number"])
    return values


def test_demo_json_logs_hold_no_personal_data_and_the_temp_folder_goes(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = clean_env(TMPDIR=str(tmp), POLICY_PUSH_LOG_FORMAT="json", POLICY_PUSH_LOG_LEVEL="DEBUG")
    proc = cli(["demo", "--exit", "--port", str(free_port())], env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log_lines = [line for line in proc.stderr.splitlines() if line.startswith("{")]
    assert len(log_lines) > 20, proc.stderr[-2000:]  # DEBUG was honoured: the service logged
    for line in log_lines:
        entry = json.loads(line)
        assert {"time", "level", "logger", "message"} <= entry.keys(), line
        assert entry["time"].endswith("+08:00"), line  # LOCAL_TIMEZONE, as the API answers
    everything = proc.stdout + proc.stderr
    leaked = sorted(v for v in _personal_values() if v in everything)
    assert not leaked, leaked[:5]
    assert DEMO_PII_KEY not in everything
    assert not [p.name for p in tmp.iterdir() if p.name.startswith("policy_push_demo_")]


def test_formatter_masks_and_carries_the_request_id() -> None:
    assert mask_personal("call 13812345678 or 211102195904095417") == "call 138****5678 or 211102********5417"
    assert mask_personal("push to /cb?signature=ab12&openid=oQ5MK8Zw3Jyqjq3kxK8Tig66yISn failed") == (
        "push to /cb?signature=ab12&openid=*** failed"
    )
    assert mask_personal("user oQ5MK8Zw3Jyqjq3kxK8Tig66yISn unfollowed") == "user oQ5M**** unfollowed"
    stream = io.StringIO()
    configure_logging(Settings(log_format="json", log_level="INFO"), stream=stream)
    try:
        token = REQUEST_ID.set("req-12345678")
        logging.getLogger("policy_push.test").error("driver said %s", "value (13812345678) violates unique")
        logging.getLogger("policy_push.test").debug("not shown at INFO")
        REQUEST_ID.reset(token)
    finally:
        logging.getLogger().handlers.clear()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["message"] == "driver said value (138****5678) violates unique"
    assert entry["request_id"] == "req-12345678" and entry["level"] == "ERROR"
