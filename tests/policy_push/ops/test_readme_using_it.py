"""README "Using it" runs as written: every line of its block, in order, in a fresh directory, by bash.

Long-running commands (``serve``, ``worker``, ``simulators``) are started, checked once they say they
are up, and stopped as an operator stops them (SIGTERM; Ctrl+C for the simulators), expecting exit
status 0. Only the HTTP port is moved off 8080 (POLICY_PUSH_PORT), so the test never collides with a
service someone runs on this machine."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .cli_run import ROOT, clean_env, free_port

pytestmark = pytest.mark.slow

_READY = {"serve": "Press Ctrl+C to stop.", "worker": "(Ctrl+C to stop)", "simulators": "Ctrl-C to stop"}


def using_it_lines() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Using it\n.*?```sh\n(.*?)```", readme, re.S)
    assert block is not None, "README has no 'Using it' sh block"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def _long_running(command: str) -> str | None:
    words = command.split()
    if words[:2] in (["policy-push", "serve"], ["policy-push", "worker"]):
        return words[1]
    if words[:2] == ["policy-push", "simulators"] and (len(words) == 2 or words[2].startswith("--")):
        return "simulators"
    return None


def _start(script: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(["bash", "-c", script], env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip


def _wait_for(proc: subprocess.Popen[str], marker: str, timeout_s: float = 120) -> str:
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"never said {marker!r}:\n{''.join(seen)[-3000:]}")


def _stop(proc: subprocess.Popen[str], sig: int) -> int:
    """Send ``sig`` as a terminal or a platform would; the exit status, after checking no traceback was shown."""
    os.killpg(proc.pid, sig)  # bash exec'd the command: the signal reaches policy-push itself
    try:
        rest, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError(f"still running 60 s after signal {sig}: {proc.args}") from None
    code = proc.returncode
    assert "Traceback" not in rest, rest[-3000:]
    return code


#: Ctrl+C may end the simulators by the signal itself (as a shell shows it), or with status 0
_CTRL_C = (0, -signal.SIGINT, 130)


def test_every_line_of_using_it_runs_in_a_fresh_directory(tmp_path: Path) -> None:
    lines = using_it_lines()
    assert any("import residents" in line for line in lines), "residents are imported, not only exported"
    port = free_port()
    env = clean_env(POLICY_PUSH_PORT=str(port))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    exports: list[str] = []
    simulators: subprocess.Popen[str] | None = None
    try:
        for line in lines:
            script = "set -e\n" + "\n".join(exports) + f"\nexec {line}" if not line.startswith("export ") else ""
            if line.startswith("export "):
                exports.append(line)
                proc = subprocess.run(["bash", "-c", "set -e\n" + "\n".join(exports)], env=env, cwd=tmp_path,
                                      capture_output=True, text=True, timeout=60)  # fmt: skip
                assert proc.returncode == 0, (line, proc.stderr)
                continue
            kind = _long_running(line)
            if kind == "simulators":
                if simulators is not None:  # the plain run first, then the scripted one stays up for `reply`
                    assert _stop(simulators, signal.SIGINT) in _CTRL_C, line
                simulators = _start(script, env, tmp_path)
                _wait_for(simulators, _READY["simulators"])
                continue
            if kind is not None:
                proc_ = _start(script, env, tmp_path)
                out = _wait_for(proc_, _READY[kind])
                if kind == "serve":
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=30) as r:
                        assert json.load(r)["status"] == "ok"
                assert _stop(proc_, signal.SIGTERM) == 0, (line, out)
                continue
            done = subprocess.run(["bash", "-c", script.replace("\nexec ", "\n")], env=env, cwd=tmp_path,
                                  capture_output=True, text=True, timeout=300)  # fmt: skip
            assert done.returncode == 0, (line, done.stdout[-2000:], done.stderr[-2000:])
            assert "Traceback" not in done.stderr, (line, done.stderr[-2000:])
    finally:
        if simulators is not None and simulators.poll() is None:
            assert _stop(simulators, signal.SIGINT) in _CTRL_C
    # what the lines promised is there
    assert (tmp_path / "residents-export.jsonl").stat().st_size > 0
    assert len((tmp_path / "matches.jsonl").read_text(encoding="utf-8").splitlines()) > 0
    assert len((tmp_path / "suggested.jsonl").read_text(encoding="utf-8").splitlines()) == 24


def test_the_sample_readme_lists_what_ships() -> None:
    sample = ROOT / "policy_push" / "sample"
    readme = (sample / "README.md").read_text(encoding="utf-8")
    table = re.findall(r"^\| (\S+\.(?:jsonl|toml)) \|", readme, re.M)
    shipped = sorted(p.name for p in sample.iterdir() if p.name != "README.md")
    assert sorted(table) == shipped
    # the simulator settings are the documented example, kept in one version
    assert (sample / "simulators.toml").read_text(encoding="utf-8") == (ROOT / "docs/examples/simulators.toml").read_text(encoding="utf-8")
