"""``POLICY_PUSH_LOG_LEVEL`` is honoured by a real ``policy-push serve`` process: at ERROR it prints no
INFO (nor DEBUG or WARNING) line while it starts, answers requests and stops; at INFO the same run does
print INFO lines (start-up, access lines), so the check can fail."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from policy_push.config import Settings

from .cli_run import ROOT, clean_env, free_port

pytestmark = pytest.mark.slow

#: a log line at one of these levels, in the text format (``time LEVEL logger [request id] message``)
_BELOW_ERROR = re.compile(r"^\S+ (DEBUG|INFO|WARNING) \S+ \[", re.M)


@pytest.fixture
def db_kind() -> str:
    return "sqlite"  # the logging set-up does not depend on the database


def _serve(settings: Settings, tmp: Path, level: str) -> tuple[int, str]:
    """Start ``serve`` at ``level``, wait until it is alive, make a few requests, SIGTERM it; its exit code
    and everything it printed."""
    assert settings.pii_key is not None
    port = free_port()
    env = clean_env(POLICY_PUSH_DATABASE_URL=settings.effective_database_url, POLICY_PUSH_DATA_DIR=str(settings.data_dir),
                    POLICY_PUSH_PII_KEY=settings.pii_key.get_secret_value(), POLICY_PUSH_LOG_LEVEL=level)  # fmt: skip
    out = tmp / f"serve-{level}.log"
    with out.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "policy_push", "serve", "--port", str(port)],
                                stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=ROOT)  # fmt: skip
        try:
            began = time.monotonic()
            while True:
                assert proc.poll() is None, out.read_text(errors="replace")[-3000:]
                assert time.monotonic() - began < 90, out.read_text(errors="replace")[-3000:]
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=2) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    time.sleep(0.3)
            for path in ("/api/v1/policies", "/docs", "/no/such/page"):
                with contextlib.suppress(OSError):  # the 404 too: its access line is what counts
                    urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).close()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return code, out.read_text(errors="replace")


def test_serve_at_error_prints_no_info_line(db_settings: Settings, tmp_path: Path) -> None:
    code, printed = _serve(db_settings, tmp_path, "ERROR")
    assert code == 0, printed[-3000:]
    assert not _BELOW_ERROR.search(printed), printed[-3000:]
    assert " INFO " not in printed and "Traceback" not in printed, printed[-3000:]
    # the same run at INFO does log: start-up and access lines
    code, printed = _serve(db_settings, tmp_path, "INFO")
    assert code == 0, printed[-3000:]
    levels = set(_BELOW_ERROR.findall(printed))
    assert "INFO" in levels and "GET /docs 200" in printed, printed[-3000:]
