"""Schemathesis (pinned in the test extra) against the OpenAPI document of a running service (issue 10).

The schemathesis CLI generates requests from ``/api/v1/openapi.json`` for every operation (examples,
coverage, fuzzing and stateful phases) and checks each answer: no server error, and every response
as documented (status code, content type, headers, body schema).  Bounded: a fixed seed, a few
examples per operation, one worker, and a time limit on the whole run.

Not yet among the checks (docs/security.md, "Schemathesis"): whether every schema-valid request is
accepted and every schema-violating one refused; the document's schemas do not yet carry every
constraint the validators apply (id patterns, non-empty titles, the criteria grammar).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from policy_push.config import Settings

from .conftest import TOKEN
from .live_server import LiveServer, seeded_server

pytestmark = [pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True), pytest.mark.slow]

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance"


@pytest.fixture
def live(db_settings: Settings) -> Iterator[LiveServer]:
    with seeded_server(db_settings) as server:
        yield server


def test_schemathesis_finds_no_server_error_and_every_answer_is_documented(live: LiveServer, tmp_path: Path) -> None:
    st = Path(sys.executable).with_name("st")
    command = [
        str(st), "run", f"http://127.0.0.1:{live.port}/api/v1/openapi.json",
        "-H", f"Authorization: Bearer {TOKEN}", "-H", "X-Staff-Member: alice",
        "--checks", CHECKS,
        # NDJSON bodies have no serializer in schemathesis; the import route is fuzzed by test_fuzz_routes
        "--exclude-path", "/api/v1/import/{kind}",
        # the JSON API and the callbacks; the HTML pages (staff console, /me, people's links) are fuzzed for
        # server errors by test_fuzz_routes, and their redirects and form answers are not all documented yet
        "--include-path-regex", "^/(api|callbacks)/",
        "--max-examples", "5", "--seed", "1", "--workers", "1", "--max-time", "150", "--request-timeout", "30",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=400, cwd=tmp_path, check=False)
    report = done.stdout[-12000:] + done.stderr[-2000:]
    assert done.returncode == 0, report
    assert " passed" in done.stdout and "generated" in done.stdout, report
