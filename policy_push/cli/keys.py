"""``policy-push keys status|rotate``: which PII key the data is under, and changing it.

The stored data records the fingerprint of the key it is encrypted with; every command refuses another key
(exit status 8). `keys status` shows the fingerprints and how many values each key holds. `keys rotate`
re-encrypts online, in batches, with progress, under POLICY_PUSH_PII_KEY; the previous key must be in
POLICY_PUSH_PII_OLD_KEYS while it runs (serve and worker keep working if they have both keys). A stopped
rotation resumes when run again; when no value is left under the old key it is retired and may be removed from
POLICY_PUSH_PII_OLD_KEYS.

Example::

  export POLICY_PUSH_PII_OLD_KEYS=$POLICY_PUSH_PII_KEY
  export POLICY_PUSH_PII_KEY=$(policy-push keygen)    # keep it with the backups
  policy-push keys rotate
  policy-push keys status
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from tqdm import tqdm

from policy_push.runtime import open_runtime
from policy_push.storage.pii_keys import begin_rotation, count_by_key, key_state, retire_finished, rotate_all

from .help import add_action, add_actions, add_documented


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_documented(sub, "keys", "PII key fingerprints and rotation", __doc__)
    actions = add_actions(p, "keys_command")
    add_action(actions, "status", "fingerprints of the configured and the stored keys, values per key", _status)
    rot = add_action(actions, "rotate", "re-encrypt every stored personal value under POLICY_PUSH_PII_KEY", _rotate)
    rot.add_argument("--batch", type=int, default=500, help="rows per transaction (default 500)")
    rot.add_argument("--quiet", action="store_true", help="no progress bar")


def _status(args: argparse.Namespace) -> int:
    from policy_push.cli import settings_from

    settings = settings_from(args)

    async def run() -> int:
        async with open_runtime(settings, check_pii_key=False) as runtime:
            state = await key_state(runtime.sessions, runtime.cipher)
            counts = await count_by_key(runtime.sessions)
        print(f"configured key     {state.configured}  ({counts.get(state.configured, 0)} values)")
        for fp in runtime.cipher.old_fingerprints:
            print(f"old key (read)     {fp}  ({counts.get(fp, 0)} values)")
        print(f"data's active key  {state.active or '(none recorded yet)'}")
        for fp in state.rotating:
            print(f"rotating from      {fp}  ({counts.get(fp, 0)} values left)")
        for fp in state.retired:
            print(f"retired            {fp}")
        if counts.get("legacy"):
            print(f"without key id     {counts['legacy']} values (written before key ids; `keys rotate` adds them)")
        ok = state.active in (None, state.configured)
        print("the configured key is the data's key" if ok else "the configured key is NOT the data's key")
        return 0 if ok else 8

    return asyncio.run(run())


def _rotate(args: argparse.Namespace) -> int:
    from policy_push.cli import settings_from

    settings = settings_from(args)

    async def run() -> None:
        async with open_runtime(settings, check_pii_key=False) as runtime:
            before = await key_state(runtime.sessions, runtime.cipher)
            state = await begin_rotation(runtime.sessions, runtime.cipher)
            if before.active != state.active:
                print(f"new data now written under {state.active}; re-encrypting what is under {', '.join(state.rotating)}")
            with tqdm(unit=" rows", desc="re-encrypt", disable=args.quiet, file=sys.stderr) as bar:
                done = await rotate_all(
                    runtime.sessions, runtime.cipher, runtime.ref, batch=args.batch,
                    progress=lambda _table, n: bar.update(n),
                )  # fmt: skip
            retired = await retire_finished(runtime.sessions, runtime.cipher)
        print("re-encrypted " + ", ".join(f"{n} {table}" for table, n in done.items()) + f" under {state.active}")
        if retired:
            print(f"retired {', '.join(retired)}: no value is left under it; remove it from POLICY_PUSH_PII_OLD_KEYS")

    asyncio.run(run())
    return 0
