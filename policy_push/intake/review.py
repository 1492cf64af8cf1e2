"""The review queue: policy texts waiting for a person, with the suggestions made for them.

An item arrives pending (pasted by staff, or fetched from a source).  A reviewer confirms it,
deciding each suggestion the record holds (accept, edit or reject) and any the record left out
(accept or edit to add it); the result is validated and written through the policy repository
(a new policy, or a new version of an existing one), and the audit log records who confirmed
what.  Or the reviewer rejects it.  Nothing else turns an item into a policy.
"""

from __future__ import annotations

import copy
import datetime as dt
import enum
import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from policy_push.domain import Policy, ValidationContext, parse_policy
from policy_push.domain.criteria import validate_criteria
from policy_push.errors import RecordInvalid
from policy_push.storage import AuditLog, PolicyRepository
from policy_push.storage.intake_tables import ReviewItemRow
from policy_push.storage.tables import utcnow

from .errors import DecisionInvalid, ItemNotFound, ItemNotPending, SuggestionNotFound, SuggestionsUndecided
from .suggest import SuggestionResult

__all__ = [
    "Decision",
    "ReviewQueue",
    "ReviewStatus",
    "apply_decisions",
    "content_hash",
]


class ReviewStatus(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


def content_hash(title: str, text: str) -> str:
    return hashlib.sha256(f"{title}\n{text}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Decision:
    """One reviewer decision: ``action`` is accept, edit or reject; ``value`` the edited value."""

    action: str
    value: Any = None

    @classmethod
    def parse(cls, raw: Any, sid: str) -> Decision:
        if raw in ("accept", "reject"):
            return cls(raw)
        if isinstance(raw, dict) and set(raw) == {"edit"}:
            return cls("edit", raw["edit"])
        raise DecisionInvalid(
            f"decision for {sid} must be \"accept\", \"reject\" or {{\"edit\": value}}", loc=["body", "decisions", sid]
        )


def _delete_path(tree: dict[str, Any], path: list[Any]) -> None:
    node: Any = tree
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = None


def _replace_path(tree: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    if not path:
        return value
    node: Any = tree
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return tree


def _compact(node: Any) -> Any:
    """The tree without deleted (None) leaves and the groups they emptied."""
    if node is None:
        return None
    for logic in ("all", "any"):
        if logic in node:
            children = [c for c in (_compact(c) for c in node[logic]) if c is not None]
            if not children:
                return None
            return children[0] if len(children) == 1 else {logic: children}
    if "not" in node:
        inner = _compact(node["not"])
        return None if inner is None else {"not": inner}
    return node


def apply_decisions(
    suggested: dict[str, Any],
    suggestions: list[dict[str, Any]],
    decisions: dict[str, Any],
    fields: dict[str, Any],
    ctx: ValidationContext,
) -> tuple[Policy, dict[str, list[str]]]:
    """The policy a reviewer confirmed: the suggested record with each decision applied, then
    the fields they wrote themselves.  Every suggestion the record holds must be decided."""
    by_id = {s["id"]: s for s in suggestions}
    unknown = sorted(set(decisions) - set(by_id))
    if unknown:
        raise SuggestionNotFound(f"no suggestion {', '.join(unknown[:5])} in this item", loc=["body", "decisions"])
    undecided = [s["id"] for s in suggestions if s.get("applied") and s["id"] not in decisions]
    if undecided:
        raise SuggestionsUndecided(
            f"decide every suggestion the record holds (accept, edit or reject); undecided: {', '.join(undecided[:10])}",
            loc=["body", "decisions"],
        )
    record = copy.deepcopy(suggested)
    tree = copy.deepcopy(record.pop("criteria", None))
    audience = fields.get("audience", record.get("audience"))
    summary: dict[str, list[str]] = {"accepted": [], "edited": [], "rejected": []}
    appended: list[dict[str, Any]] = []
    # deletions by path first, from the deepest, so earlier paths stay valid
    ordered = sorted(decisions.items(), key=lambda kv: -len(by_id[kv[0]].get("path") or []))
    for sid, raw in ordered:
        s, d = by_id[sid], Decision.parse(raw, sid)
        summary[{"accept": "accepted", "edit": "edited", "reject": "rejected"}[d.action]].append(sid)
        if s["field"] == "unsupported":
            if d.action != "reject":
                raise DecisionInvalid(
                    f"{sid} is a condition the criteria language cannot hold; write it into the criteria "
                    "yourself (fields.criteria) or reject it",
                    loc=["body", "decisions", sid],
                )
            continue
        if s["field"] == "criteria":
            value = d.value if d.action == "edit" else s["value"]
            if d.action != "reject":
                problems = validate_criteria(value, str(audience), ctx.ref)
                if problems:
                    raise DecisionInvalid(f"{sid}: {problems[0].field}: {problems[0].msg}", loc=["body", "decisions", sid])
            path = s.get("path")
            if path is not None and tree is not None:
                if d.action == "reject" and not path:
                    tree = None
                elif d.action == "reject":
                    _delete_path(tree, list(path))
                elif d.action == "edit":
                    tree = _replace_path(tree, list(path), value)
            elif d.action != "reject":
                appended.append(value)
            continue
        if d.action == "reject":
            if s.get("applied"):
                record[s["field"]] = None
        elif d.action == "edit":
            record[s["field"]] = d.value
        elif not s.get("applied"):
            record[s["field"]] = s["value"]
    tree = _compact(tree)
    if appended:
        if tree is None:
            tree = appended[0] if len(appended) == 1 else {"all": appended}
        elif "all" in tree:
            tree = {"all": [*tree["all"], *appended]}
        else:
            tree = {"all": [tree, *appended]}
    if tree is not None:
        record["criteria"] = tree
    record.update(fields)
    record = {k: v for k, v in record.items() if v is not None or k in ("criteria",)}
    if record.get("criteria") is None:
        record.pop("criteria", None)
    try:
        policy = parse_policy(record, ctx)
    except RecordInvalid as exc:
        first = exc.errors[0]
        raise DecisionInvalid(
            f"the confirmed policy is invalid: {first.field}: {first.msg}", loc=["body", *first.loc]
        ) from None
    return policy, summary


def _item_json(row: ReviewItemRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "status": row.status,
        "origin": row.origin,
        "source": row.source,
        "url": row.url,
        "title": row.title,
        "text": row.text,
        "document_id": row.document_id,
        "document_version": row.document_version,
        "diff": row.diff,
        "suggested": row.suggested,
        "suggestions": row.suggestions,
        "created_by": row.created_by,
        "created_at": row.created_at,
        "decided_by": row.decided_by,
        "decided_at": row.decided_at,
        "decision": row.decision,
        "policy_id": row.policy_id,
        "policy_version": row.policy_version,
    }


class ReviewQueue:
    """The queue over one session.  Never commits: the caller's transaction decides."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.audit = AuditLog(session)

    async def add(
        self,
        *,
        title: str,
        text: str,
        result: SuggestionResult,
        origin: str,
        created_by: str,
        url: str | None = None,
        source: str | None = None,
        document_id: int | None = None,
        document_version: int | None = None,
        diff: str | None = None,
        now: dt.datetime | None = None,
    ) -> str:
        item_id = str(uuid.uuid4())
        row = ReviewItemRow(
            id=item_id,
            status=ReviewStatus.PENDING.value,
            origin=origin,
            source=source,
            document_id=document_id,
            document_version=document_version,
            url=url,
            title=title,
            text=text,
            content_hash=content_hash(title, text),
            suggested=result.record,
            suggestions=[s.to_json() for s in result.suggestions],
            diff=diff,
            created_by=created_by,
            created_at=now or utcnow(),
        )
        self.session.add(row)
        await self.session.flush()
        await self.audit.record(
            actor=created_by, action="review.add", entity_type="review_item", entity_id=item_id,
            detail={"origin": origin, "source": source, "url": url, "suggestions": len(result.suggestions)},
        )
        return item_id

    async def get(self, item_id: str) -> dict[str, Any]:
        row = await self.session.get(ReviewItemRow, item_id, populate_existing=True)
        if row is None:
            raise ItemNotFound(f"no review item {item_id[:80]!r}", loc=["path", "id"])
        return _item_json(row)

    async def list(self, *, status: str | None, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        where = [] if status is None else [ReviewItemRow.status == status]
        total = await self.session.scalar(select(func.count()).select_from(ReviewItemRow).where(*where))
        rows = (
            await self.session.execute(
                select(ReviewItemRow).where(*where).order_by(ReviewItemRow.created_at.desc(), ReviewItemRow.id)
                .limit(limit).offset(offset)
            )
        ).scalars().all()
        return [_item_json(r) for r in rows], int(total or 0)

    async def _pending(self, item_id: str) -> ReviewItemRow:
        row = await self.session.get(ReviewItemRow, item_id, with_for_update=True, populate_existing=True)
        if row is None:
            raise ItemNotFound(f"no review item {item_id[:80]!r}", loc=["path", "id"])
        if row.status != ReviewStatus.PENDING.value:
            raise ItemNotPending(
                f"review item {item_id!r} was already {row.status} by {row.decided_by}", loc=["path", "id"]
            )
        return row

    async def confirm(
        self,
        item_id: str,
        *,
        staff: str,
        decisions: dict[str, Any],
        fields: dict[str, Any],
        ctx: ValidationContext,
    ) -> tuple[Policy, str, int]:
        """Write the confirmed policy; returns it, the outcome (created / updated / unchanged) and its version."""
        row = await self._pending(item_id)
        policy, summary = apply_decisions(row.suggested, row.suggestions, decisions, fields, ctx)
        result = await PolicyRepository(self.session).upsert(policy, actor=staff)
        row.status = ReviewStatus.CONFIRMED.value
        row.decided_by = staff
        row.decided_at = utcnow()
        row.decision = {"decisions": decisions, "fields": sorted(fields), **summary}
        row.policy_id = policy.id
        row.policy_version = result.version
        await self.audit.record(
            actor=staff, action="review.confirm", entity_type="review_item", entity_id=item_id,
            detail={"policy_id": policy.id, "version": result.version, "outcome": result.outcome,
                    "fields_written": sorted(fields), **summary},
        )
        return policy, result.outcome, int(result.version or 0)

    async def reject(self, item_id: str, *, staff: str, reason: str) -> None:
        row = await self._pending(item_id)
        row.status = ReviewStatus.REJECTED.value
        row.decided_by = staff
        row.decided_at = utcnow()
        row.decision = {"reason": reason}
        await self.audit.record(
            actor=staff, action="review.reject", entity_type="review_item", entity_id=item_id, detail={"reason": reason}
        )
