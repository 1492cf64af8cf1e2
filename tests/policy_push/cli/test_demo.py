"""`policy-push demo --exit`, the README's main command, as a person runs it."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from pathlib import Path


def test_demo_shows_the_whole_flow(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICY_PUSH_")}
    proc = subprocess.run(
        [sys.executable, "-m", "policy_push", "demo", "--exit", "--data-dir", str(tmp_path / "demo"),
         # any free port: the simulators' callbacks (the TD reply, the unfollow below) must reach the real one
         "--port", "0"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-3000:]
    # import, match, preview with masked contacts and the SMS length, four-eyes approval
    assert "24 created" in out and "400 created" in out and "600 created" in out
    assert re.search(r"\d+ open policies matched and drafted by 王科员", out)
    assert re.search(r"SMS \(\d+ characters, \d+ segment", out)
    assert re.search(r"sms:1\d\d\*\*\*\*\d{4}", out)
    assert "李科长 (a second officer) approved" in out
    # two officers with accounts of their own, and where to log in
    assert re.search(r"staff accounts \(log in at http://127\.0\.0\.1:\d+/staff/login", out)
    assert re.search(r"王科员 \(prepares\)  password: \S{12,}", out) and re.search(r"李科长 \(approves\)  password: \S{12,}", out)
    # quiet hours held the night's messages, then the morning sent them
    # the first night only: on a loaded machine a round can outlast a simulated day, and the counts are running
    # totals, so a line in the next night rightly shows the morning's sends
    lines = [line for line in out.splitlines() if re.search(r"\bsent\s+\d+\s+delivered\s+\d+\s+waiting", line)]
    first = next(i for i, line in enumerate(lines) if "(quiet hours)" in line)
    night = list(itertools.takewhile(lambda line: "(quiet hours)" in line, lines[first:]))
    assert night and all(re.search(r"\bsent\s+0\b", line) for line in night), night
    assert "deadline reminder campaign(s) started" in out
    # a TD reply and an unfollow, pushed by the simulators to the demo's own callbacks (its random secrets)
    assert re.search(r'1\d\d\*\*\*\*\d{4} replied "TD": opted out of sms \([1-9]\d* profile', out), out[-2000:]
    assert re.search(r"unfollowed the account: opted out of wechat \([1-9]\d* profile", out), out[-2000:]
    funnel = out[out.index("funnel:") :]
    fell_back = int(re.search(r"fell back\s+(\d+)", funnel).group(1))  # type: ignore[union-attr]
    delivered = sum(int(n) for n in re.findall(r"delivered (\d+)", funnel))
    assert fell_back > 0 and delivered > 0
    assert re.search(r"waiting\s+\d+\s+for the frequency cap", funnel)
    # personal data never printed whole
    assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", out + proc.stderr)


def test_the_demo_refuses_a_data_dir_holding_an_earlier_run_in_one_line(tmp_path: Path) -> None:
    """A second run on the first run's folder would find its campaigns already approved and sent (it ended in a
    traceback): refused before any work, with what to do."""
    (tmp_path / "policy_push.db").write_bytes(b"")
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICY_PUSH_")}
    proc = subprocess.run(
        [sys.executable, "-m", "policy_push", "demo", "--exit", "--data-dir", str(tmp_path), "--port", "0"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert proc.returncode == 9, proc.stderr
    assert proc.stderr.count("\n") == 1 and "already holds an earlier demo's database" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
