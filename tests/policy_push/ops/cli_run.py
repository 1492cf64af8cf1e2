"""Running ``policy-push`` as the operator does: a real process, a clean environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PG_URL = os.environ.get("POLICY_PUSH_TEST_PG_URL") or "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICY_PUSH_")}
    env.update(extra)
    return env


def cli(args: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "policy_push", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
