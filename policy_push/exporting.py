"""``policy-push export``: stored records back out in the formats.md shapes."""

from __future__ import annotations

import json
from typing import TextIO

from policy_push.importing import normalise_kind
from policy_push.runtime import Runtime
from policy_push.storage import PolicyRepository, profile_repository

__all__ = ["export_records"]


async def export_records(runtime: Runtime, kind: str, out: TextIO, *, page: int = 1000) -> int:
    """Write every record of ``kind`` as one JSON line; returns how many."""
    record_kind = normalise_kind(kind)
    n = 0
    async with runtime.sessions() as session:
        if record_kind == "policy":
            repo = PolicyRepository(session)
            offset = 0
            while True:
                items, _total = await repo.list(limit=page, offset=offset)
                for stored in items:
                    out.write(json.dumps(stored.policy.to_json(), ensure_ascii=False) + "\n")
                    n += 1
                if len(items) < page:
                    break
                offset += page
        else:
            profiles = profile_repository(record_kind, session, runtime.cipher)
            async for profile in profiles.iter_all(chunk=page):
                out.write(json.dumps(profile.to_json(), ensure_ascii=False) + "\n")
                n += 1
    return n
