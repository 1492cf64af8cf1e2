"""Policy pages: list with Chinese full-text search (title, text, issuer, document number), detail with
the criteria as Chinese sentences and the versions with a diff, create / edit with errors next to each
field, and a JSONL import with errors by line."""

from __future__ import annotations

import itertools
import json
from typing import Any

from aiohttp import web
from sqlalchemy import select

from policy_push.domain import parse_policy
from policy_push.errors import FieldError, InvalidInput, PolicyPushError, RecordInvalid
from policy_push.intake.diffing import text_diff
from policy_push.matching import shared_tokenizer
from policy_push.storage import PolicyRepository
from policy_push.storage.tables import PolicyRow

from ..keys import refdata_key, service_key
from ..views._common import drafter, request_context, staff_member, transaction
from .criteria_text import criteria_lines
from .render import console_page, posted

__all__ = ["policy_detail", "policy_form", "policy_import", "policy_list", "policy_save", "search_policies"]

_PAGE = 25
_AUDIENCES = {"enterprise": "惠企（企业）", "resident": "惠民（居民）"}


def _haystack(doc: dict[str, Any]) -> tuple[str, str]:
    title = str(doc.get("title") or "")
    rest = " ".join(str(doc.get(k) or "") for k in ("text", "issuer", "doc_number", "summary"))
    return title, rest


def search_policies(rows: list[tuple[str, dict[str, Any]]], query: str) -> list[tuple[float, str]]:
    """(score, id) of the policies whose title, text, issuer or document number hold every word of the
    query (cut by jieba, stop words dropped), or the query as typed (e.g. 盘政发〔2026〕12号); a word in
    the title counts three times.  Best first."""
    q = query.strip()
    words = [w for w in dict.fromkeys(shared_tokenizer().tokens(q)) if w.strip()] if q else []
    out = []
    for policy_id, doc in rows:
        title, rest = _haystack(doc)
        if q in title or q in rest:
            score = 10.0 + 3 * title.count(q) + rest.count(q)
        elif words and all(w in title or w in rest for w in words):
            score = sum(3 * title.count(w) + rest.count(w) for w in words) / len(words)
        else:
            continue
        out.append((score, policy_id))
    return sorted(out, key=lambda t: (-t[0], t[1]))


async def policy_list(request: web.Request) -> web.Response:
    q = (request.query.get("q") or "").strip()[:100]
    audience = request.query.get("audience") if request.query.get("audience") in _AUDIENCES else None
    offset = max(0, int(request.query.get("offset", "0")) if request.query.get("offset", "0").isdigit() else 0)
    async with transaction(request) as session:
        stmt = select(PolicyRow.id, PolicyRow.document).order_by(PolicyRow.published_on.desc().nulls_last(), PolicyRow.id)
        if audience:
            stmt = stmt.where(PolicyRow.audience == audience)
        rows = [(pid, doc) for pid, doc in (await session.execute(stmt)).all()]
    docs = dict(rows)
    ids = [pid for _, pid in search_policies(rows, q)] if q else [pid for pid, _ in rows]
    page = [docs[i] for i in ids[offset:offset + _PAGE]]
    return await console_page(
        request, "console_policies.html", title="政策", items=page, total=len(ids), q=q, audience=audience or "",
        audiences=_AUDIENCES, offset=offset, page=_PAGE,
    )  # fmt: skip


async def policy_detail(request: web.Request) -> web.Response:
    policy_id = request.match_info["id"]
    async with transaction(request) as session:
        repo = PolicyRepository(session)
        stored = await repo.get(policy_id)
        if stored is None:
            raise web.HTTPNotFound(reason="no such policy")
        history = await repo.history(policy_id)
    doc = stored.policy.to_json()
    versions = []
    for newer, older in itertools.pairwise(history):
        versions.append({"version": newer.version, "at": newer.created_at, "actor": newer.actor,
                         "diff": text_diff(_pretty(older.policy.to_json()), _pretty(newer.policy.to_json()),
                                           old_label=f"第{older.version}版", new_label=f"第{newer.version}版")})  # fmt: skip
    lines = criteria_lines(doc.get("criteria"), doc["audience"], request.app[refdata_key])
    return await console_page(
        request, "console_policy.html", title=doc["title"], p=doc, version=stored.version, lines=lines,
        versions=versions, first=history[-1].version if history else 1, audiences=_AUDIENCES,
    )  # fmt: skip


def _pretty(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True)


# -- create / edit ---------------------------------------------------------------------------------
_TEXT_FIELDS = ("id", "title", "issuer", "doc_number", "summary", "text", "url", "published_on", "apply_from", "apply_until")


def _record_from_form(form: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The policy record a form describes, and errors of fields that are not even readable."""
    record: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in _TEXT_FIELDS:
        value = str(form.get(name, "")).strip()
        if value:
            record[name] = value
    record["audience"] = str(form.get("audience", "")).strip()
    cats = [c.strip() for c in str(form.get("categories", "")).replace("，", ",").split(",") if c.strip()]
    if cats:
        record["categories"] = cats
    raw_benefit = str(form.get("benefit_max_yuan", "")).strip()
    if raw_benefit:
        try:
            record["benefit_max_yuan"] = float(raw_benefit) if "." in raw_benefit else int(raw_benefit)
        except ValueError:
            errors["benefit_max_yuan"] = "请填写数字（元）"
    record["urgent"] = form.get("urgent") == "on"
    raw = str(form.get("criteria", "")).strip()
    if raw:
        try:
            record["criteria"] = json.loads(raw)
        except json.JSONDecodeError as exc:
            errors["criteria"] = f"条件不是合法的 JSON：第 {exc.lineno} 行第 {exc.colno} 列，{exc.msg}"
    return record, errors


def _form_values(doc: dict[str, Any]) -> dict[str, str]:
    values = {k: str(doc.get(k) or "") for k in _TEXT_FIELDS}
    values["audience"] = str(doc.get("audience") or "enterprise")
    values["categories"] = "，".join(doc.get("categories") or [])
    values["benefit_max_yuan"] = "" if doc.get("benefit_max_yuan") is None else str(doc["benefit_max_yuan"])
    values["urgent"] = "on" if doc.get("urgent") else ""
    values["criteria"] = json.dumps(doc["criteria"], ensure_ascii=False, indent=2) if doc.get("criteria") else ""
    return values


async def policy_form(request: web.Request) -> web.Response:
    policy_id = request.match_info.get("id")
    values: dict[str, str] = {"audience": "enterprise"}
    if policy_id:
        async with transaction(request) as session:
            stored = await PolicyRepository(session).get(policy_id)
        if stored is None:
            raise web.HTTPNotFound(reason="no such policy")
        values = _form_values(stored.policy.to_json())
    return await console_page(request, "console_policy_form.html", title="编辑政策" if policy_id else "新建政策",
                              values=values, errors={}, editing=policy_id, audiences=_AUDIENCES)  # fmt: skip


def _field_errors(exc: PolicyPushError) -> dict[str, str]:
    out: dict[str, str] = {}
    errors = exc.errors if isinstance(exc, RecordInvalid) else [FieldError(tuple(exc.loc or ()), exc.msg)]
    for e in errors:
        loc = [p for p in e.loc if p not in ("body",)]
        key = str(loc[0]) if loc else "_"
        out.setdefault(key if key in (*_TEXT_FIELDS, "audience", "categories", "benefit_max_yuan", "criteria") else "_",
                       f"{e.field}: {e.msg}" if key == "criteria" else e.msg)  # fmt: skip
    return out


async def policy_save(request: web.Request) -> web.StreamResponse:
    form = await posted(request)
    editing = request.match_info.get("id")
    record, errors = _record_from_form(form)
    if editing:
        record["id"] = editing
    if errors:  # the rest of the record is checked too, so that every error shows at once
        try:
            parse_policy(record, request_context(request))
        except PolicyPushError as exc:
            for key, msg in _field_errors(exc).items():
                errors.setdefault(key, msg)
    if not errors:
        service = request.app[service_key]
        try:
            if editing:
                await service.put_policy(editing, record, actor=staff_member(request), drafter=drafter(request))
            else:
                await service.create_policy(record, actor=staff_member(request), drafter=drafter(request))
        except (InvalidInput, PolicyPushError) as exc:
            errors = _field_errors(exc)
        else:
            raise web.HTTPSeeOther(f"/staff/policies/{record.get('id', '')}?saved=1")
    values = {k: str(form.get(k, "")) for k in (*_TEXT_FIELDS, "audience", "categories", "benefit_max_yuan", "criteria",
                                                  "urgent")}  # fmt: skip
    return await console_page(request, "console_policy_form.html", status=422, title="政策有误", values=values,
                              errors=errors, editing=editing, audiences=_AUDIENCES)  # fmt: skip


async def policy_import(request: web.Request) -> web.Response:
    """GET: the upload form; POST: a JSONL file of policies, with each rejected line and why."""
    report = None
    error = ""
    if request.method == "POST":
        upload = (await posted(request)).get("file")  # the CSRF check has read the form already
        data = upload.file.read() if isinstance(upload, web.FileField) else b""
        if not data:
            error = "请选择一个 JSONL 文件（每行一条政策）"
        else:
            report = await request.app[service_key].import_lines(
                "policies", [data], actor=staff_member(request), drafter=drafter(request)
            )
    return await console_page(request, "console_import.html", title="导入政策", report=report, error=error,
                              status=422 if error else 200)  # fmt: skip
