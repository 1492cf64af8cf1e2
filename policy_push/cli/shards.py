"""``policy-push shards list|set|remove``: the shard map (which `serve` node holds which regions).

A serve node started with POLICY_PUSH_SHARD=NAME holds only the profiles whose region code starts with one of
NAME's prefixes (the longest prefix wins; profiles no prefix covers, or without a region, belong to the first
shard by name) and asks the other shards, at their URLs, for the rest of a match list. Running shard nodes take
up a changed map within seconds, without a restart: a region moved is indexed by the node gaining it and dropped
by the node losing it, and a match list needing a node not yet done is a 503 meanwhile (docs/scaling.md).

Example::

  policy-push shards set east --url http://10.0.0.5:8080 --regions 211102,211103
  policy-push shards set west --url http://10.0.0.6:8080 --regions 2111
  policy-push shards list
  policy-push shards remove west
"""

from __future__ import annotations

import argparse
import asyncio

from policy_push.errors import InvalidInput
from policy_push.storage import create_engine, require_current_schema, session_factory
from policy_push.storage import shards as shard_store

from .failures import CommandFailed, Exit
from .help import add_action, add_actions, add_documented


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_documented(
        sub, "shards", "the shard map: which serve node holds the profiles of which regions", __doc__
    )
    actions = add_actions(p, "shards_command")
    add_action(actions, "list", "show the shard map", _list)
    st = add_action(actions, "set", "add a shard or change its URL and regions", _set)
    st.add_argument("name", help="the shard's name (a-z, 0-9, '_', '-')")
    st.add_argument("--url", required=True, help="the base URL its serve node answers on, as the other nodes reach it")
    st.add_argument("--regions", required=True, help="region code prefixes, comma-separated ('' for every region)")
    rm = add_action(actions, "remove", "remove a shard from the map", _remove)
    rm.add_argument("name")


def _run(args: argparse.Namespace, action: str) -> int:
    from policy_push.cli import settings_from

    settings = settings_from(args)

    async def run() -> int:
        engine = create_engine(settings)
        try:
            await require_current_schema(engine)
            async with session_factory(engine)() as session, session.begin():
                if action == "set":
                    shard = shard_store.validate(args.name, args.url, args.regions.split(","))
                    new = await shard_store.put(session, shard)
                    print(f"shard {shard.name} {'added' if new else 'changed'}: {shard.url} regions {','.join(shard.prefixes) or '(all)'}")
                elif action == "remove":
                    if not await shard_store.remove(session, args.name):
                        raise CommandFailed(Exit.FINDINGS, f"no shard {args.name!r} in the map")
                    print(f"shard {args.name} removed")
                current = await shard_store.load(session)
            if action == "list":
                if not current:
                    print("no shards: every serve node holds every profile")
                for s in current.shards:
                    print(f"{s.name}\t{s.url}\t{','.join(s.prefixes) or '(all)'}")
            return 0
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except InvalidInput as exc:
        raise CommandFailed(Exit.USAGE, exc.msg) from None


def _list(args: argparse.Namespace) -> int:
    return _run(args, "list")


def _set(args: argparse.Namespace) -> int:
    return _run(args, "set")


def _remove(args: argparse.Namespace) -> int:
    return _run(args, "remove")
