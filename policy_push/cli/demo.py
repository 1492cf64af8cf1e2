"""``policy-push demo``: the whole service on embedded SQLite with the bundled Panjin sample."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from importlib import resources
from pathlib import Path

from policy_push.config import Settings
from policy_push.storage import create_engine, upgrade

from .records import import_file
from .serve import run_server

SAMPLE_FILES = (("policies", "policies.jsonl"), ("enterprises", "enterprises.jsonl"), ("residents", "residents.jsonl"))
DEMO_TOKEN = "demo-token"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "demo",
        help="run the demo: embedded SQLite, the bundled Panjin sample data, then serve the API",
    )
    p.add_argument("--data-dir", type=Path, help="keep the demo's data here (default: a new temporary directory)")
    p.add_argument("--port", type=int, default=8080, help="port for the API (default 8080)")
    p.add_argument("--exit", action="store_true", help="stop after the demo run instead of serving")
    p.set_defaults(handler=_demo)


def sample_path(name: str) -> Path:
    return Path(str(resources.files("policy_push") / "sample" / name))


async def prepare(settings: Settings, *, quiet: bool = False) -> None:
    from policy_push.runtime import open_runtime

    engine = create_engine(settings)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    async with open_runtime(settings) as runtime:
        for kind, name in SAMPLE_FILES:
            report = await import_file(runtime, kind, sample_path(name), actor="demo", quiet=quiet)
            print(f"  {kind:<12} {report.summary()}")


def _demo(args: argparse.Namespace) -> int:
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="policy_push_demo_"))
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(demo=True, data_dir=data_dir, port=args.port, api_token=DEMO_TOKEN, database_url="")
    print(f"policy_push demo — data in {data_dir}")
    print("importing the Panjin sample (24 policies, 400 enterprises, 600 residents):")
    asyncio.run(prepare(settings))
    base = f"http://{settings.host}:{settings.port}"
    print("try:")
    print(f"  curl {base}/api/v1/policies?audience=enterprise")
    print(f"  curl -H 'Authorization: Bearer {DEMO_TOKEN}' {base}/api/v1/residents/r-000001")
    if args.exit:
        return 0
    run_server(settings)
    return 0
