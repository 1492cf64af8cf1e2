"""``policy-push import`` and ``policy-push export``: JSONL files in and out."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from tqdm import tqdm

from policy_push.errors import InvalidInput
from policy_push.exporting import export_records
from policy_push.importing import KINDS, ImportReport, normalise_kind, phone_source_name
from policy_push.runtime import Runtime, open_runtime
from policy_push.security.files import open_private
from policy_push.service import Service
from policy_push.storage import AuditLog

from .failures import CommandFailed, Exit
from .help import add_documented
from .staff import cli_actor

_CHUNK = 64 * 1024


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_documented(sub, "import", "import policies, enterprises or residents from a JSONL file", _import.__doc__)
    p.add_argument("kind", choices=sorted(KINDS), help="what the file holds")
    p.add_argument("file", type=Path, help="JSONL file, one record a line (formats.md)")
    p.add_argument("--report", type=Path, help="where to write rejected lines (default FILE.rejected.jsonl)")
    p.add_argument("--actor", default="cli", help="who is importing, for the audit log")
    p.add_argument("--phone-source", metavar="REGISTER",
                   help="the official register the file's phones come from (e.g. 盘锦市市场监督管理局企业登记); recorded "
                   "on each profile and in the audit log. Without it the phones are unproven and never pushed to, until "
                   "their holder proves them with an SMS code")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_import)

    e = add_documented(sub, "export", "write policies, enterprises or residents as JSONL", _export.__doc__)
    e.add_argument("kind", choices=sorted(KINDS))
    e.add_argument("-o", "--output", type=Path, help="file to write, readable by its owner only (default: standard output)")
    e.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    e.add_argument("--actor", default=cli_actor(), help="who is exporting, for the audit log (default: cli:<os user>)")
    e.set_defaults(handler=_export)


async def import_file(
    runtime: Runtime, kind: str, path: Path, *, actor: str, quiet: bool = False, phone_source: str | None = None
) -> ImportReport:
    size = path.stat().st_size
    with path.open("rb") as fh, tqdm(
        total=size, unit="B", unit_scale=True, desc=f"import {kind}", disable=quiet, file=sys.stderr
    ) as bar:
        done = [0]

        def progress(consumed: int, _lines: int) -> None:
            bar.update(consumed - done[0])
            done[0] = consumed

        # no match index in this process: a running server sees the import through the change feed
        return await Service(runtime).import_lines(
            kind, iter(lambda: fh.read(_CHUNK), b""), actor=actor, progress=progress, phone_source=phone_source
        )


def write_report(report: ImportReport, path: Path) -> None:
    # owner-only, never through a symbolic link planted at the report's name (security.files)
    with open_private(path) as fh:
        for rejected in report.rejected:
            fh.write(json.dumps(rejected.as_dict(), ensure_ascii=False) + "\n")


def _import(args: argparse.Namespace) -> int:
    """``policy-push import``

    Idempotent: the same file twice changes nothing; a changed policy becomes a new version. Each rejected
    line is reported with its line number, field and reason and written to FILE.rejected.jsonl; it changes
    nothing stored (exit status 1). Needs `policy-push db upgrade` first and the PII key the data is stored with.

    Example::

      policy-push import policies policies.jsonl
      policy-push import residents residents.jsonl --quiet
    """
    from policy_push.cli import settings_from

    settings = settings_from(args)
    if not args.file.is_file():
        raise CommandFailed(Exit.FILES, f"no such file {str(args.file)!r}; `policy-push sample --out DIR` writes the sample files")
    try:
        phone_source = phone_source_name(args.phone_source, args.kind)
    except InvalidInput as exc:
        raise CommandFailed(Exit.USAGE, f"--phone-source: {exc}") from None

    async def run() -> ImportReport:
        async with open_runtime(settings) as runtime:
            return await import_file(
                runtime, args.kind, args.file, actor=args.actor, quiet=args.quiet, phone_source=phone_source
            )

    report = asyncio.run(run())
    print(report.summary())
    if report.rejected:
        report_path = args.report or args.file.with_name(args.file.name + ".rejected.jsonl")
        try:
            write_report(report, report_path)
        except OSError as exc:
            print(f"policy-push import: cannot write the report {report_path}: {exc.strerror or exc} "
                  "(a symbolic link there is refused; give another path with --report)", file=sys.stderr)
            return 2
        for r in report.rejected[:10]:
            first = r.errors[0]
            print(f"  line {r.line_no}: {first.field}: {first.msg}", file=sys.stderr)
        if len(report.rejected) > 10:
            print(f"  … and {len(report.rejected) - 10} more", file=sys.stderr)
        print(f"rejected lines written to {report_path}")
        return 1
    return 0


def _export(args: argparse.Namespace) -> int:
    """``policy-push export``

    Writes the stored records in the import format (contacts decrypted: handle the file as personal data).
    An existing output file is never overwritten unless --force is given.

    Example::

      policy-push export residents -o residents.jsonl
      policy-push export policies > policies.jsonl
    """
    from policy_push.cli import settings_from

    settings = settings_from(args)
    if args.output and args.output.exists() and not args.force:
        raise CommandFailed(Exit.FILES, f"{str(args.output)!r} exists; choose another file or add --force to overwrite it")

    async def run() -> int:
        async with open_runtime(settings) as runtime:
            if args.output:
                with open_private(args.output) as fh:
                    n = await export_records(runtime, args.kind, fh)
            else:
                n = await export_records(runtime, args.kind, sys.stdout)
            async with runtime.sessions() as session, session.begin():
                await AuditLog(session).record(
                    actor=args.actor, action="export", entity_type=normalise_kind(args.kind), entity_id="*",
                    detail={"records": n, "to": "file" if args.output else "stdout"},
                )  # fmt: skip
            return n

    try:
        n = asyncio.run(run())
    except OSError as exc:
        if args.output is None or exc.filename not in (str(args.output), args.output):
            raise
        print(f"policy-push export: cannot write {args.output}: {exc.strerror or exc} "
              "(a symbolic link there is refused)", file=sys.stderr)
        return 2
    print(f"exported {n} {args.kind}", file=sys.stderr)
    return 0
