"""The public surface of scheduler/ is pinned, and the engine imports nothing of the application."""

import ast
import sys
from pathlib import Path

import scheduler

PUBLIC = [
    "AlwaysLeader",
    "Clock",
    "FrequencyCap",
    "FrozenClock",
    "LeaderElection",
    "LockLeader",
    "QuietHours",
    "ScaledClock",
    "SendWindows",
    "SystemClock",
    "Tick",
    "TickOutcome",
    "TickScheduler",
    "TickStats",
    "earliest_send_time",
    "end_of_local_day",
    "next_send_time",
    "reminder_due",
    "spread",
]


def test_all_is_sorted_and_pinned() -> None:
    assert scheduler.__all__ == PUBLIC
    assert scheduler.__all__ == sorted(scheduler.__all__)


def test_all_matches_public_names() -> None:
    assert scheduler.__all__ == sorted(n for n in vars(scheduler) if not n.startswith("_"))


def test_engine_imports_only_stdlib_and_apscheduler() -> None:
    allowed = set(sys.stdlib_module_names) | {"apscheduler", "scheduler"}
    package = Path(scheduler.__file__).parent
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            for root in roots:
                assert root in allowed, f"{path.name} imports {root}"
