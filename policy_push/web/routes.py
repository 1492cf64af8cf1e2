"""The one table of routes.  ``setup_routes`` registers it with the router, the auth middleware
reads its ``auth`` flags, and :mod:`policy_push.web.openapi` documents it: they cannot drift."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from policy_push.matching.fanout import ME_POLICIES_PATH, PROFILE_POLICIES_PATH, SHARD_PATH
from policy_push.staff import Role

from . import console
from .keys import route_index_key
from .middlewares import expect_continue
from .params import PHONE_SOURCE_PARAMS, POLICY_LIST_PARAMS, PROFILE_LIST_PARAMS, QueryParam
from .schemas import SCHEMA_MODELS
from .views import (
    api_explorer,
    callbacks,
    campaigns,
    docs,
    feedback,
    health,
    imports,
    inbound,
    matches,
    me,
    me_pages,
    ops,
    policies,
    review,
)
from .views.profiles import ENTERPRISES, RESIDENTS, ProfileViews

__all__ = ["API_PREFIX", "ROUTES", "Body", "Reply", "Route", "setup_routes"]

API_PREFIX = "/api/v1"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Body:
    """A request body: a schema name from :data:`policy_push.web.schemas.SCHEMA_MODELS`."""

    schema: str
    content_type: str = "application/json"
    description: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    """A success response; ``schema`` None means no body (204)."""

    status: int
    schema: str | None
    description: str
    content_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    operation_id: str
    summary: str
    tag: str
    replies: tuple[Reply, ...]
    #: needs a staff principal (every write, every read of personal data); ``role`` says which at least:
    #: when left None, viewer for reads and editor for writes (``needs``; policy_push.web.auth enforces it)
    auth: bool = False
    #: needs a subscriber session token instead (``/api/v1/me``: the person's own data; the view checks it)
    subscriber: bool = False
    body: Body | None = None
    query: tuple[QueryParam, ...] = ()
    #: error statuses this route can answer besides 401/403 (auth) and 500
    errors: tuple[int, ...] = ()
    description: str = ""
    path_params: dict[str, str] = field(default_factory=dict)
    role: Role | None = None
    #: an HTML page of the staff console: without a login it redirects to /staff/login, and its forms
    #: carry a CSRF token (the login form too)
    page: bool = False

    def __post_init__(self) -> None:
        if self.role is not None and not self.auth:
            object.__setattr__(self, "auth", True)

    @property
    def needs(self) -> Role | None:
        """The least role this route needs; None for public routes."""
        if not self.auth:
            return None
        if self.role is not None:
            return self.role
        return Role.VIEWER if self.method in ("GET", "HEAD") else Role.EDITOR


# the match views declare their response shapes beside them; the OpenAPI document reads them here
SCHEMA_MODELS.update(matches.MATCH_SCHEMAS)
SCHEMA_MODELS.update(campaigns.CAMPAIGN_SCHEMAS)
SCHEMA_MODELS.update(review.REVIEW_SCHEMAS)
SCHEMA_MODELS.update(me.ME_SCHEMAS)
SCHEMA_MODELS.update(inbound.INBOUND_SCHEMAS)
SCHEMA_MODELS.update(me_pages.ME_PAGE_SCHEMAS)

_ID = {"id": "The record's id."}
_WRITE = (Reply(201, "WriteResult", "Created."),)
_UPSERT = (Reply(200, "WriteResult", "Updated, or unchanged when the content was identical."), Reply(201, "WriteResult", "Created."))
_PROFILE_GET_NOTE = (
    "Admins only: returns the whole record, personal data included (a reveal, audited). List views mask "
    "personal data."
)

_MATCHES_NOTE = (
    "Token required: the list says who qualifies, which for resident policies is personal data. Items carry "
    "profile ids and reasons only. Matching ignores apply windows (an expired policy can still be previewed). "
    "A policy without criteria matches every profile of its audience; `no_criteria` and `note` say so. "
    "While the match index is still being built at start-up the request waits for it; 503 if it could not be built."
)
_PROFILE_POLICIES_NOTE = (
    "Token required (it describes one enterprise or person). Only policies open on `date` (no deadline, or "
    "`apply_until` not before it), best text match first. Asked of a shard node not holding the profile, the "
    "node holding it answers (a 503 naming that shard when it does not: docs/scaling.md)."
)


def _profile_routes(views: ProfileViews, envelope: str, record: str, tag: str) -> list[Route]:
    base = f"{API_PREFIX}/{views.collection}"
    title = views.kind
    return [
        Route("GET", base, views.list, f"list_{views.collection}", f"List {title} profiles (personal data masked)", tag,
              (Reply(200, "MaskedProfilePage", "One page of profiles, personal values masked."),),
              auth=True, query=PROFILE_LIST_PARAMS, errors=(422,)),
        Route("POST", base, views.create, f"create_{title}", f"Register a new {title} profile", tag, _WRITE,
              auth=True, body=Body(record), errors=(409, 413, 415, 422), query=PHONE_SOURCE_PARAMS),
        Route("GET", f"{base}/{{id}}", views.get, f"get_{title}", f"Get one {title} profile, unmasked", tag,
              (Reply(200, envelope, "The profile."),), role=Role.ADMIN, errors=(404,), description=_PROFILE_GET_NOTE,
              path_params=_ID),
        Route("PUT", f"{base}/{{id}}", views.put, f"put_{title}", f"Create or replace a {title} profile", tag, _UPSERT,
              auth=True, body=Body(record), errors=(409, 413, 415, 422), path_params=_ID, query=PHONE_SOURCE_PARAMS,
              description="The body's id, when given, must equal the id in the path. 409: an ID number or credit "
              "code already registered to another profile."),
        Route("DELETE", f"{base}/{{id}}", views.delete, f"delete_{title}", f"Delete a {title} profile", tag,
              (Reply(204, None, "Deleted."),), auth=True, errors=(404,), path_params=_ID),
    ]


_STAFF_NOTE = (
    "The acting account (token or login) is recorded; the four-eyes rule compares account ids, never names."
)
_CAMPAIGN = {"id": "The campaign's id."}
_HTML = Reply(200, "HtmlPage", "An HTML page.", content_type="text/html")


def _campaign_routes() -> list[Route]:
    base, c = f"{API_PREFIX}/campaigns", campaigns
    one = f"{base}/{{id}}"
    detail = (Reply(200, "CampaignOut", "The campaign after the change."),)
    change = (Reply(200, "RecipientChange", "How many changed; an approved campaign is a draft again."),)
    return [
        Route("GET", base, c.list_campaigns, "list_campaigns", "List campaigns", "campaigns",
              (Reply(200, "CampaignPage", "Newest first."),), auth=True, query=c.CAMPAIGN_LIST_PARAMS, errors=(422,)),
        Route("POST", base, c.create_campaign, "create_campaign", "Match a policy and prepare a draft campaign", "campaigns",
              (Reply(201, "CampaignDetail", "The draft."),), auth=True, body=Body("CampaignCreate"),
              errors=(404, 409, 413, 415, 422), description="Older drafts of the policy are cancelled. " + _STAFF_NOTE),
        Route("GET", one, c.get_campaign, "get_campaign", "A campaign: counts, histogram, messages, top recipients",
              "campaigns", (Reply(200, "CampaignDetail", "Contacts masked."),), auth=True, errors=(404,), path_params=_CAMPAIGN),
        Route("GET", f"{one}/recipients", c.campaign_recipients, "list_campaign_recipients",
              "Recipients of a campaign (paged; contacts masked)", "campaigns",
              (Reply(200, "RecipientPage", "Best score first."),), auth=True, query=c.RECIPIENT_PARAMS,
              errors=(404, 422), path_params=_CAMPAIGN),
        Route("POST", f"{one}/exclude", c.exclude, "exclude_recipients", "Take recipients off the list", "campaigns",
              change, auth=True, body=Body("ProfileIds"), errors=(404, 409, 413, 415, 422), path_params=_CAMPAIGN,
              description=_STAFF_NOTE),
        Route("POST", f"{one}/include", c.include, "include_recipients", "Put recipients back, or include may-qualify ones",
              "campaigns", change, auth=True, body=Body("ProfileIds"), errors=(404, 409, 413, 415, 422),
              path_params=_CAMPAIGN, description="Recipients skipped by a rule (no consent, opted out, unreachable, "
              "already notified) cannot be included (409). " + _STAFF_NOTE),
        Route("PUT", f"{one}/send-time", c.put_send_time, "set_campaign_send_time", "Set the send time", "campaigns",
              detail, auth=True, body=Body("SendTimeIn"), errors=(404, 409, 413, 415, 422), path_params=_CAMPAIGN,
              description=_STAFF_NOTE),
        Route("POST", f"{one}/approve", c.approve_campaign, "approve_campaign", "Approve (four eyes)", "campaigns", detail,
              role=Role.APPROVER, query=c.APPROVE_PARAMS, errors=(404, 409, 422), path_params=_CAMPAIGN,
              description="403 when the approver prepared the campaign; 409 when nobody would be messaged, or when "
              "`sha256` (the `list_sha256` the approver saw) no longer matches. Records who, when and the SHA-256 of "
              "the recipient list and messages. " + _STAFF_NOTE),
        Route("POST", f"{one}/schedule", c.schedule_campaign, "schedule_campaign", "Schedule an approved campaign",
              "campaigns", detail, role=Role.APPROVER, errors=(404, 409, 422), path_params=_CAMPAIGN,
              description="At the send time set in draft, else now. " + _STAFF_NOTE),
        Route("POST", f"{one}/cancel", c.cancel_campaign, "cancel_campaign", "Cancel a campaign", "campaigns", detail,
              auth=True, errors=(404, 409, 422), path_params=_CAMPAIGN, description=_STAFF_NOTE),
        Route("POST", f"{API_PREFIX}/opt-outs", feedback.create_opt_out, "create_opt_out",
              "Record an opt-out (e.g. an SMS 回复TD uplink)", "campaigns",
              (Reply(201, "OptOutResult", "Recorded."), Reply(200, "OptOutResult", "Already recorded.")), auth=True,
              body=Body("OptOutIn"), errors=(404, 413, 415, 422), description=_STAFF_NOTE),
        Route("GET", "/p/{policy_id}", feedback.policy_page, "policy_page", "The page a message links to", "recipients",
              (_HTML,), errors=(404,), path_params={"policy_id": "The policy's id."},
              query=(QueryParam("t", "The signed, expiring link token from a WeChat or app message: shows why you "
                                "got it (no sensitive fact) and the feedback buttons.", {"type": "string"}, str),),
              description="Public. Shows no personal data; everything is escaped. A missing, altered or expired "
              "token shows the public policy page alone."),
        Route("POST", "/p/{policy_id}/feedback", feedback.post_feedback, "post_feedback", "有用 / 不相关 / 已申报 / 退订",
              "recipients", (_HTML,), body=Body("FeedbackForm", content_type="application/x-www-form-urlencoded"),
              errors=(403, 404, 408, 413, 415, 422, 429), path_params={"policy_id": "The policy's id."},
              description="Public; the signed link token (`t`) identifies the recipient, the `csrf` field must equal "
              "the page's `pp_link_csrf` cookie, and a cross-site Origin/Referer is refused (403). Recorded once per "
              "kind; 退订 asks for a confirming second post (`confirm=yes`), then opts out of every channel."),
        Route("GET", "/s/{code}", feedback.short_link, "short_link", "Where the SMS short link lands", "recipients",
              (_HTML,), errors=(404, 429),
              path_params={"code": "The 8-character code after the short-link base."},
              description="Public, rate-limited per client address (429). Renders the person's page directly (no "
              "redirect); an unknown or expired code is a 404."),
    ]  # fmt: skip


_REVIEW_NOTE = "The acting account is recorded in the audit log."
_ITEM = {"id": "The review item's id."}


def _review_routes() -> list[Route]:
    base, r = f"{API_PREFIX}/review", review
    one = f"{base}/{{id}}"
    item = (Reply(200, "ReviewItemOut", "The item."),)
    return [
        Route("POST", f"{API_PREFIX}/policies/suggest", r.suggest, "suggest_policy",
              "Suggest a policy record from its title and text", "intake",
              (Reply(200, "SuggestOut", "The suggested record and each suggestion with its sentence and confidence."),),
              auth=True, body=Body("SuggestIn"), errors=(413, 415, 422),
              description="Stores nothing. Proposes audience, categories, issuer, document number, apply window, "
              "benefit maximum and criteria; conditions the criteria language cannot hold come back as `unsupported`."),
        Route("GET", base, r.list_items, "list_review_items", "The review queue (newest first)", "intake",
              (Reply(200, "ReviewPage", "One page of items."),), auth=True, query=r.REVIEW_LIST_PARAMS, errors=(422,)),
        Route("POST", base, r.create_item, "create_review_item", "Put a pasted policy text in the review queue",
              "intake", (Reply(201, "ReviewItemOut", "The pending item with its suggestions."),), auth=True,
              body=Body("ReviewCreate"), errors=(413, 415, 422), description=_REVIEW_NOTE),
        Route("GET", one, r.get_item, "get_review_item", "One review item with its suggestions", "intake", item,
              auth=True, errors=(404,), path_params=_ITEM),
        Route("POST", f"{one}/confirm", r.confirm_item, "confirm_review_item",
              "Confirm: decide each suggestion and write the policy", "intake",
              (Reply(200, "ConfirmOut", "The policy was created, versioned or left unchanged."),), auth=True,
              body=Body("ReviewConfirm"), errors=(404, 409, 413, 415, 422), path_params=_ITEM,
              description="Every suggestion the suggested record holds must be decided (accept, edit or reject); "
              "the result is validated and written through the policy storage (a new version when the id exists). "
              "409 when the item was already decided or a suggestion it holds is left undecided; 404 for a decision on a "
              "suggestion it does not hold. " + _REVIEW_NOTE),
        Route("POST", f"{one}/reject", r.reject_item, "reject_review_item", "Reject: no policy is written", "intake",
              item, auth=True, body=Body("ReviewReject"), errors=(404, 409, 413, 415, 422), path_params=_ITEM,
              description=_REVIEW_NOTE),
    ]  # fmt: skip


_FORM = "application/x-www-form-urlencoded"


def _console_routes() -> list[Route]:
    """The staff console (HTML, policy_push.web.console): pages need a login, forms a CSRF token."""
    one = "/staff/campaigns/{id}"
    back = (Reply(303, None, "Back to the page, or to the login page."),)

    def page(path: str, handler: Handler, op: str, summary: str, role: Role | None = Role.VIEWER, **kw: Any) -> Route:
        return Route("GET", path, handler, op, summary, "staff console", (_HTML,), page=True, role=role, **kw)

    def form(path: str, handler: Handler, op: str, summary: str, role: Role | None, **kw: Any) -> Route:
        return Route("POST", path, handler, op, summary, "staff console", back, page=True, role=role,
                     body=Body("ConsoleForm", content_type=_FORM), **kw)

    return [
        Route("GET", "/static/{name}", console.static_file, "static_file", "The console's CSS", "staff console",
              (Reply(200, None, "The file.", content_type="text/css"),), errors=(404,), path_params={"name": "File name."}),
        page("/staff/login", console.login_form, "staff_login_page", "Log in", role=None),
        form("/staff/login", console.login_submit, "staff_login", "Log in (name, password)", role=None, errors=(401, 429)),
        form("/staff/logout", console.logout, "staff_logout", "Log out", role=Role.VIEWER),
        page("/staff", console.dashboard, "staff_dashboard", "Dashboard: campaigns, today's sends, failures, funnel"),
        page("/staff/campaigns", console.campaign_list, "staff_campaigns", "Campaign list with filters"),
        page(one, console.campaign_preview, "staff_campaign_page", "Campaign preview", errors=(404,),
             path_params=_CAMPAIGN),
        page(f"{one}/progress", console.campaign_progress, "staff_campaign_progress", "Campaign progress",
             errors=(404,), path_params=_CAMPAIGN),
        form(f"{one}/exclude", console.post_exclude, "staff_exclude", "Exclude the ticked recipients", Role.EDITOR,
             path_params=_CAMPAIGN, errors=(404, 409, 422)),
        form(f"{one}/include", console.post_include, "staff_include", "Include the ticked recipients", Role.EDITOR,
             path_params=_CAMPAIGN, errors=(404, 409, 422)),
        form(f"{one}/send-time", console.post_send_time, "staff_send_time", "Set the send time", Role.EDITOR,
             path_params=_CAMPAIGN),
        form(f"{one}/cancel", console.post_cancel, "staff_cancel", "Cancel the campaign", Role.EDITOR,
             path_params=_CAMPAIGN),
        form(f"{one}/approve", console.post_approve, "staff_approve", "Approve (four eyes, with the list's SHA-256)",
             Role.APPROVER, path_params=_CAMPAIGN, errors=(403, 409, 422)),
        page("/staff/policies", console.policy_list, "staff_policies", "Policies, with Chinese full-text search"),
        page("/staff/policies/new", console.policy_form, "staff_policy_new_form", "New policy form", Role.EDITOR),
        form("/staff/policies/new", console.policy_save, "staff_policy_create", "Create a policy", Role.EDITOR,
             errors=(422,)),
        page("/staff/policies/import", console.policy_import, "staff_policy_import_form", "Import policies (JSONL)",
             Role.EDITOR),
        Route("POST", "/staff/policies/import", console.policy_import, "staff_policy_import", "Import policies (JSONL)",
              "staff console", (_HTML,), page=True, role=Role.EDITOR, errors=(422,),
              body=Body("ConsoleForm", content_type="multipart/form-data")),
        page("/staff/policies/{id}", console.policy_detail, "staff_policy", "A policy: criteria as sentences, versions",
             errors=(404,), path_params=_ID),
        page("/staff/policies/{id}/edit", console.policy_form, "staff_policy_edit_form", "Edit a policy", Role.EDITOR,
             errors=(404,), path_params=_ID),
        form("/staff/policies/{id}/edit", console.policy_save, "staff_policy_edit", "Save a policy (a new version)",
             Role.EDITOR, errors=(422,), path_params=_ID),
        page("/staff/review", console.review_list, "staff_review_list", "The review queue; paste a policy text"),
        form("/staff/review", console.review_create, "staff_review_create", "Queue a pasted text with suggestions",
             Role.EDITOR, errors=(422,)),
        page("/staff/review/{id}", console.review_item, "staff_review_item", "A review item: suggestions beside "
             "their sentences", errors=(404,), path_params=_ITEM),
        form("/staff/review/{id}/confirm", console.review_confirm, "staff_review_confirm", "Confirm: write the policy",
             Role.EDITOR, errors=(404, 409, 422), path_params=_ITEM),
        form("/staff/review/{id}/reject", console.review_reject, "staff_review_reject", "Reject the item", Role.EDITOR,
             errors=(404, 409, 422), path_params=_ITEM),
        page("/staff/profiles", console.profile_lookup, "staff_profiles", "Profile look-up form"),
        Route("POST", "/staff/profiles", console.profile_search, "staff_profile_search",
              "Look a profile up (credit code, id, or a full phone / ID number matched by keyed hash)", "staff console",
              (_HTML,), page=True, role=Role.VIEWER, body=Body("ConsoleForm", content_type=_FORM), errors=(422,)),
        Route("POST", "/staff/profiles/{kind}/{id}/reveal", console.profile_reveal, "staff_profile_reveal",
              "Reveal a profile's full values (admin, audited)", "staff console", (_HTML,), page=True, role=Role.ADMIN,
              body=Body("ConsoleForm", content_type=_FORM), errors=(404, 422),
              path_params={"kind": "enterprise or resident.", "id": "The profile's id."}),
        page("/staff/audit", console.audit_log_page, "staff_audit", "The audit log (chain checked on demand)"),
        page("/staff/inbound", console.inbound_page, "staff_inbound", "What people sent back: replies, opt-outs, "
             "follows (senders and long numbers masked)"),
        page("/staff/contacts", console.contacts_page, "staff_contacts", "Enterprise contacts waiting for approval"),
        form("/staff/contacts/{id}/{decision}", console.contact_decide, "staff_contact_decide",
             "Approve or refuse a pending enterprise contact (audited)", console.CONTACT_DECIDER, errors=(404, 409, 422),
             path_params={"id": "The contact request's link_id.", "decision": "approve or refuse."}),
    ]  # fmt: skip


_SECRET = {"secret": "The callback secret (`callback_secret`), as configured at the provider: a wrong one is a 404."}
_UNSIGNED = (
    "Unsigned by the provider: the secret path segment authenticates the push (constant-time comparison; a wrong "
    "secret is a 404, a source outside `callback_allow_sources` a 403). At most 100 items and 256 KiB per push "
    "(413); a body that is not this provider's push is a 400. One transaction per push."
)
_RECEIPTS = (
    " A report changes only a delivery sent through this provider, on its channel, with this message id and "
    "recipient; late or duplicate reports are recorded as events and change nothing."
)
_REPLIES = (
    " TD / T / N / R / 退订 / 取消 (either width, any case, alone) opt every profile with that phone out of SMS "
    "and cancel its queued SMS; other replies are stored for staff."
)


def _sms_push(
    path: str, handler: Handler, operation_id: str, summary: str, replies: tuple[Reply, ...], body: str, about: str
) -> Route:
    """A provider's unsigned SMS push (receipts or replies): the secret path segment is its only credential."""
    return Route("POST", path, handler, operation_id, summary, "callbacks", replies, body=Body(body),
                 errors=(400, 403, 404, 413), path_params=_SECRET, description=_UNSIGNED + about)  # fmt: skip


def _callback_routes() -> list[Route]:
    c = callbacks
    ack, tack = "AliyunReceiptAck", "TencentCallbackAck"
    return [
        _sms_push("/callbacks/aliyun/{secret}/sms-report", c.aliyun_sms_report, "aliyun_sms_report",
                  "Aliyun SMS receipts (SmsReport push)",
                  (Reply(200, ack, "Applied; Aliyun stops pushing this array."),
                   Reply(500, ack, "Some reports could not be matched or kept; Aliyun pushes again later.")),
                  "AliyunSmsReport", _RECEIPTS),
        _sms_push("/callbacks/aliyun/{secret}/sms-up", c.aliyun_sms_up, "aliyun_sms_up",
                  "Aliyun SMS replies (SmsUp push)",
                  (Reply(200, ack, "Recorded."),), "AliyunSmsUp", _REPLIES),
        _sms_push("/callbacks/tencent/{secret}/sms-status", c.tencent_sms_status, "tencent_sms_status",
                  "Tencent SMS receipts (status callback)",
                  (Reply(200, tack, "Applied."),
                   Reply(500, tack, "Some reports could not be matched or kept; Tencent pushes again later.")),
                  "TencentSmsStatus", _RECEIPTS),
        _sms_push("/callbacks/tencent/{secret}/sms-reply", c.tencent_sms_reply, "tencent_sms_reply",
                  "Tencent SMS replies (reply callback)",
                  (Reply(200, tack, "Recorded."),), "TencentSmsReply", _REPLIES),
        Route("GET", "/callbacks/wechat", c.wechat_verify, "wechat_verify", "WeChat server URL check (echostr)",
              "callbacks", (Reply(200, "PlainText", "The echostr, when the signature is right.", content_type="text/plain"),),
              errors=(403,)),
        Route("POST", "/callbacks/wechat", c.wechat_event, "wechat_event",
              "WeChat pushes: send results, follows and unfollows, messages", "callbacks",
              (Reply(200, "PlainText", "`success`: applied, or a push of no interest.", content_type="text/plain"),
               Reply(500, "PlainText", "A send result that could not be matched or kept; WeChat pushes again.",
                     content_type="text/plain")),
              body=Body("WechatEventXml", content_type="text/xml"), errors=(400, 403, 413),
              description="Signed by WeChat: `signature` (plain) or `msg_signature` with `encrypt_type=aes` (safe mode), "
              "`timestamp`, `nonce`. A bad signature or a timestamp outside `callback_window_s` is a 403; a push "
              "applied before is acknowledged and not applied again; a body that is not XML a 400. An unfollow stops WeChat messages to that openid (a "
              "later follow does not undo it); a TEMPLATESENDJOBFINISH or subscribe_msg_sent_event is a receipt."),
    ]


_ME_NOTE = (
    "For the person themselves: needs `Authorization: Bearer <token>` with the subscriber token from "
    "POST /api/v1/me/sessions (not the staff API token); 401 without a live one. Reaches only the profiles "
    "the account speaks for: another profile's id is a 404."
)


def _me_routes() -> list[Route]:
    base, m = f"{API_PREFIX}/me", me
    one = {"decision": "approve or refuse.", "id": "The contact request's link_id."}
    policies_reply = (Reply(200, "MePolicies", "Policies you qualify for now, then those you may qualify for."),)
    prefs_reply = (Reply(200, "MePreferences", "Your preferences and consent."),)
    return [
        Route("POST", f"{base}/codes", m.request_code, "me_request_code", "Send a sign-in code by SMS", "me",
              (Reply(202, "MeCodeOut", "A code is on its way (the same answer for every valid number)."),),
              body=Body("MeCodeIn"), errors=(413, 415, 422, 429),
              description="6 digits, valid 5 minutes, 5 attempts. Limited per phone (1 a minute, 5 an hour, 10 a day) "
              "and per client address (30 an hour): 429 with Retry-After."),
        Route("POST", f"{base}/sessions", m.create_session, "me_sign_in", "Sign in (or up) with the SMS code", "me",
              (Reply(201, "MeSessionOut", "A session token for the app."),), body=Body("MeSessionIn"),
              errors=(403, 413, 415, 422, 429), description="A wrong, used or expired code is a 403 that reads the same in every case. "
              "The first sign-in with a phone makes its account."),
        Route("DELETE", f"{base}/sessions/current", m.end_session, "me_sign_out", "Sign out (end this session)", "me",
              (Reply(204, None, "Ended."),), errors=(401,), subscriber=True, description=_ME_NOTE),
        Route("GET", base, m.me, "me_get", "Your account: phone, profiles, contact requests awaiting you", "me",
              (Reply(200, "MeOut", "Your account."),), errors=(401, 404), subscriber=True, description=_ME_NOTE),
        Route("DELETE", base, m.erase, "me_erase", "Erase your account and the profiles you own", "me",
              (Reply(200, "MeErased", "What was erased (ids only)."),), errors=(401,), subscriber=True, description=_ME_NOTE),
        Route("GET", f"{base}/export", m.export, "me_export", "Download everything held about you (JSON)", "me",
              (Reply(200, "MeExport", "Account, profiles, preferences, consents, sessions, deliveries, feedback."),),
              errors=(401, 404), subscriber=True, description=_ME_NOTE),
        Route("PUT", f"{base}/resident", m.put_resident, "me_put_resident", "Register or update your resident profile", "me",
              (Reply(200, "MeLinkOut", "Your link to the profile."),), body=Body("ResidentProfile"),
              errors=(401, 409, 413, 415, 422), subscriber=True, description="The record of formats.md without id, contact and consent: "
              "the phone is the one you proved, consent is given at /api/v1/me/consent. " + _ME_NOTE),
        Route("PUT", f"{base}/enterprise", m.put_enterprise, "me_put_enterprise", "Link your enterprise by its credit code",
              "me", (Reply(200, "MeLinkOut", "Linked (you are its first contact) or updated."),
                     Reply(202, "MeLinkOut", "Pending: the enterprise's first contact, or staff, must approve you.")),
              body=Body("EnterpriseProfile"), errors=(401, 409, 413, 415, 422), subscriber=True,
              description="`id` is the unified social credit code. The first contact of an enterprise new to the service, "
              "or the one whose proven phone is the enterprise's registered one, becomes its owner; anyone else waits for "
              "approval. " + _ME_NOTE),
        Route("GET", f"{base}/profile", m.get_profile, "me_get_profile", "Your profile, whole", "me",
              (Reply(200, "MeProfile", "The profile."),), query=m.ME_PARAMS, errors=(401, 404, 422), subscriber=True, description=_ME_NOTE),
        Route("GET", f"{base}/policies", m.my_policies, "me_policies", "Policies for me now (惠企政策指尖查)", "me",
              policies_reply, query=m.ME_POLICY_PARAMS, errors=(401, 404, 422, 503),
              subscriber=True, description="Open policies your profile qualifies for, best first, with the reasons that may be shown, "
              "deadline, benefit and how to apply; then `may_qualify` with the fields to add. " + _ME_NOTE),
        Route("GET", f"{base}/preferences", m.get_preferences, "me_get_preferences", "Your push preferences", "me",
              prefs_reply, query=m.ME_PARAMS, errors=(401, 404, 422), subscriber=True, description=_ME_NOTE),
        Route("PUT", f"{base}/preferences", m.put_preferences, "me_put_preferences",
              "Set channel order, categories of interest, most messages a week", "me", prefs_reply, query=m.ME_PARAMS,
              body=Body("MePreferences"), errors=(401, 404, 413, 415, 422), subscriber=True, description=_ME_NOTE),
        Route("POST", f"{base}/consent", m.post_consent, "me_consent", "Give or withdraw consent to policy messages", "me",
              (Reply(201, "MeConsentOut", "Recorded: what, when, channel, wording version."),), query=m.ME_PARAMS,
              body=Body("MeConsentIn"), errors=(401, 404, 413, 415, 422), subscriber=True, description=_ME_NOTE),
        Route("POST", f"{base}/contacts/{{id}}/{{decision}}", m.decide_contact, "me_decide_contact",
              "Approve or refuse another contact of your enterprise", "me", (Reply(200, "MeLinkOut", "Decided."),),
              errors=(401, 404, 409, 422), path_params=one, subscriber=True, description="Only the enterprise's first contact. " + _ME_NOTE),
        Route("POST", f"{base}/wechat", m.bind_wechat, "me_bind_wechat", "Send the WeChat binding link to your phone", "me",
              (Reply(202, "MeCodeOut", "The signed link is on its way by SMS (valid 30 minutes)."),), errors=(401, 404),
              subscriber=True, description="Open it inside WeChat: WeChat's web authorisation names your openid, which is "
              "then bound to your account and your profiles. " + _ME_NOTE),
        Route("GET", f"{API_PREFIX}/subscriber-links", m.staff_pending_contacts, "staff_pending_contacts",
              "Staff: enterprise contacts waiting for approval", "me",
              (Reply(200, "PendingContacts", "Oldest first, at most 100; phones masked."),), auth=True),
        Route("POST", f"{API_PREFIX}/subscriber-links/{{id}}/{{decision}}", m.staff_decide_contact,
              "staff_decide_contact", "Staff: approve or refuse a pending enterprise contact", "me",
              (Reply(200, "MeLinkOut", "Decided."),), role=console.CONTACT_DECIDER, errors=(404, 409, 422), path_params=one,
              description=_STAFF_NOTE),
    ]  # fmt: skip


_ME_PAGE_NOTE = "A page for the person (mobile, 390 px); the session is the pp_sub cookie, forms carry a CSRF token."


def _me_pages() -> list[Route]:
    p = me_pages
    form = Body("MeForm", content_type="application/x-www-form-urlencoded")
    back = (Reply(303, None, "On to the next page."), _HTML)
    return [
        Route("GET", "/me", p.me_home, "me_page_home", "Policies for me now (or the sign-in page)", "me pages", (_HTML,),
              description=_ME_PAGE_NOTE),
        Route("POST", "/me/code", p.me_code, "me_page_code", "Send a sign-in code", "me pages", (_HTML,),
              body=Body("MeSignInForm", content_type="application/x-www-form-urlencoded"), errors=(422, 429)),
        Route("POST", "/me/sign-in", p.me_sign_in, "me_page_sign_in", "Sign in with the code", "me pages", back,
              body=Body("MeSignInForm", content_type="application/x-www-form-urlencoded"), errors=(422, 429)),
        Route("POST", "/me/sign-out", p.me_sign_out, "me_page_sign_out", "Sign out", "me pages", back, body=form,
              errors=(422,)),
        Route("GET", "/me/profile", p.me_profile, "me_page_profile", "My profile (form)", "me pages", back,
              description=_ME_PAGE_NOTE),
        Route("POST", "/me/profile", p.me_profile_post, "me_page_profile_save", "Save my profile", "me pages", back,
              body=form, errors=(409, 422)),
        Route("GET", "/me/preferences", p.me_preferences, "me_page_preferences", "Push settings and consent", "me pages",
              back, description=_ME_PAGE_NOTE),
        Route("POST", "/me/preferences", p.me_preferences_post, "me_page_preferences_save", "Save push settings",
              "me pages", back, body=form, errors=(404, 422)),
        Route("POST", "/me/consent", p.me_consent_post, "me_page_consent", "Give or withdraw consent", "me pages", back,
              body=form, errors=(404, 422)),
        Route("POST", "/me/contacts/{id}", p.me_contact_post, "me_page_contact", "Approve or refuse a contact of my "
              "enterprise", "me pages", back, body=form, errors=(404, 409, 422),
              path_params={"id": "The contact request's link_id."}),
        Route("POST", "/me/wechat", p.me_wechat_post, "me_page_wechat", "Send the WeChat binding link", "me pages",
              back, body=form, errors=(422,)),
        Route("GET", "/me/wechat/bind/{code}", p.me_wechat_bind, "me_page_wechat_bind", "The binding link: on to WeChat",
              "me pages", (Reply(302, None, "To WeChat's web authorisation."), _HTML), errors=(403,),
              path_params={"code": "The signed binding code of the SMS (the short-link host forwards /w/<code> here)."}),
        Route("GET", "/me/wechat/callback", p.me_wechat_callback, "me_page_wechat_callback", "Back from WeChat: bind",
              "me pages", (_HTML,), errors=(403, 409, 422),
              query=(QueryParam("code", "WeChat's one-time code.", {"type": "string"}, str),
                     QueryParam("state", "The signed binding token.", {"type": "string"}, str))),
        Route("GET", "/me/data", p.me_data, "me_page_data", "My data: download, erase", "me pages", back,
              description=_ME_PAGE_NOTE),
        Route("GET", "/me/data/export.json", p.me_export, "me_page_export", "Download my data", "me pages",
              (Reply(200, "MeExport", "Everything held about me."), Reply(303, None, "Not signed in: to /me."))),
        Route("POST", "/me/data/delete", p.me_delete, "me_page_delete", "Erase my account", "me pages", back, body=form,
              errors=(422,)),
    ]  # fmt: skip


ROUTES: tuple[Route, ...] = (
    Route("GET", "/healthz", health.healthz, "healthz", "Health: database reachable, schema current, counts", "service",
          (Reply(200, "Health", "Healthy."),
           Reply(503, "Health", "The database is unreachable, its schema is out of date, or the match index failed."))),
    Route("GET", f"{API_PREFIX}/openapi.json", docs.openapi_json, "openapi", "This OpenAPI document", "service",
          (Reply(200, "OpenApiDocument", "OpenAPI 3.1 document."),)),
    Route("GET", "/livez", ops.livez, "livez", "Liveness: the process runs", "service", (Reply(200, "Probe", "Alive."),)),
    Route("GET", "/readyz", ops.readyz, "readyz", "Readiness: database, schema, PII key, match index; not stopping",
          "service", (Reply(200, "Probe", "Ready for traffic."),
                      Reply(503, "Probe", "Not ready: `problems` says why (stopping, database, schema, key, index)."))),
    Route("GET", "/metrics", ops.metrics, "metrics", "Prometheus metrics (text format 0.0.4)", "service",
          (Reply(200, "PlainText", "Counters, gauges and histograms; see docs/operations.md.", content_type="text/plain"),)),
    Route("GET", "/docs", ops.api_docs, "api_docs", "This API's documentation as an HTML page", "service", (_HTML,)),
    Route("GET", "/redoc", api_explorer.api_explorer, "redoc", "Interactive API reference (Swagger UI from a package, "
          "no CDN)", "service", (_HTML,)),
    Route("GET", "/api-docs/{name}", api_explorer.api_explorer_asset, "api_docs_asset",
          "The reference page's script and style sheet (from the swagger-ui-bundle-v2 package)", "service",
          (Reply(200, None, "The file.", content_type="text/javascript"),), errors=(404,),
          path_params={"name": "swagger-ui.css or swagger-ui-bundle.js."}),
    Route("GET", f"{API_PREFIX}/policies", policies.list_policies, "list_policies", "List policies (paged, filtered)", "policies",
          (Reply(200, "PolicyPage", "One page of policies, latest published first."),), query=POLICY_LIST_PARAMS, errors=(422,)),
    Route("POST", f"{API_PREFIX}/policies", policies.create_policy, "create_policy", "Create a policy", "policies", _WRITE,
          auth=True, body=Body("Policy"), errors=(409, 413, 415, 422),
          description="An existing id is a 409; use PUT to publish a new version."),
    Route("GET", f"{API_PREFIX}/policies/{{id}}", policies.get_policy, "get_policy", "Get a policy", "policies",
          (Reply(200, "PolicyEnvelope", "The current version."),), errors=(404,), path_params=_ID),
    Route("PUT", f"{API_PREFIX}/policies/{{id}}", policies.put_policy, "put_policy", "Create or update a policy (new version)", "policies",
          _UPSERT, auth=True, body=Body("Policy"), errors=(413, 415, 422), path_params=_ID,
          description="Changed content becomes a new version (the old one stays in the history); identical content "
          "changes nothing. The body's id, when given, must equal the id in the path."),
    Route("GET", f"{API_PREFIX}/policies/{{id}}/versions", policies.list_policy_versions, "list_policy_versions",
          "Version history of a policy", "policies", (Reply(200, "PolicyVersions", "Every version, newest first."),),
          errors=(404,), path_params=_ID),
    *_profile_routes(ENTERPRISES, "EnterpriseEnvelope", "EnterpriseProfile", "enterprises"),
    *_profile_routes(RESIDENTS, "ResidentEnvelope", "ResidentProfile", "residents"),
    Route("POST", f"{API_PREFIX}/import/{{kind}}", imports.import_records, "import_records", "Bulk import JSON lines", "import",
          (Reply(200, "ImportReportOut", "What was created, updated, left unchanged and rejected (by line)."),),
          auth=True, body=Body("NdjsonBody", content_type="application/x-ndjson",
                               description="One record per line (policies, enterprises or residents, by the path). "
                               "Bad lines are reported by number and change nothing; good lines are stored."),
          errors=(404, 415, 422), path_params={"kind": "policies, enterprises or residents."}, query=PHONE_SOURCE_PARAMS,
          description="Streamed: the body may be of any size; each line is limited by POLICY_PUSH_MAX_IMPORT_LINE_BYTES. "
          "The same id twice in one import is rejected on the later line."),
    Route("GET", f"{API_PREFIX}/policies/{{id}}/matches", matches.policy_matches, "list_policy_matches",
          "Who qualifies for a policy (preview, paged)", "matching",
          (Reply(200, "PolicyMatchPage", "Counts, a score histogram and one page of match records."),),
          auth=True, query=matches.MATCH_PARAMS, errors=(404, 422, 503), path_params=_ID,
          description=_MATCHES_NOTE),
    Route("GET", f"{API_PREFIX}/profiles/{{id}}/policies", matches.profile_policies, "list_profile_policies",
          "Open policies that fit a profile (enterprise or resident id)", "matching",
          (Reply(200, "ProfilePolicies", "Open policies the profile qualifies for, and those it may qualify for."),),
          auth=True, query=matches.PROFILE_POLICY_PARAMS, errors=(404, 409, 422, 503), path_params=_ID,
          description=_PROFILE_POLICIES_NOTE + " An id held by both an enterprise and a resident is a 409: "
          "ask /enterprises/{id}/policies or /residents/{id}/policies."),
    Route("POST", SHARD_PATH, matches.shard_part, "shard_part",
          "One shard's part of a policy's match list (between shard nodes)", "service",
          (Reply(200, "ShardPart", "This shard's eligible and may-qualify records with exact scores, counts, histogram."),),
          body=Body("ShardAsk"), errors=(401, 403, 409, 413, 415, 422, 503),
          path_params={"name": "The shard this node holds."},
          description="Asked by a shard node (POLICY_PUSH_SHARD) of the shards holding a policy's regions, with "
          "'Authorization: Bearer' the shared POLICY_PUSH_SERVICE_TOKEN (not a staff token); the asking node merges "
          "the parts (docs/scaling.md)."),
    *(
        Route("POST", path, view, op, summary, "service", (Reply(200, schema, "The answer of the public route it stands for."),),
              body=Body("ProfileAsk"), errors=(401, 403, 409, 413, 415, 422, 503),
              path_params={"name": "The shard this node holds (the profile's home)."},
              description=f"Asked by a shard node not holding the profile's region, for {public}, with 'Authorization: "
              "Bearer' the shared POLICY_PUSH_SERVICE_TOKEN (staff and subscriber tokens are refused); the profile's id "
              "goes in the body. Answered from this node's index and never forwarded again: a profile this node does "
              "not hold is a 409 (docs/scaling.md).")
        for path, view, op, summary, schema, public in (
            (PROFILE_POLICIES_PATH, matches.home_profile_policies, "home_profile_policies",
             "A profile's policies as staff see them, from its home shard (between shard nodes)", "ProfilePolicies",
             "GET /api/v1/profiles/{id}/policies and the enterprise and resident forms"),
            (ME_POLICIES_PATH, matches.home_me_policies, "home_me_policies",
             "A subscriber's policies for me, from the profile's home shard (between shard nodes)", "MePolicies",
             "GET /api/v1/me/policies"),
        )
    ),
    *(
        Route("GET", f"{API_PREFIX}/{kind}s/{{id}}/policies", view, f"list_{kind}_policies",
              f"Open policies that fit {a_kind}", "matching",
              (Reply(200, "ProfilePolicies", f"Open policies the {kind} qualifies for, and those it may qualify for."),),
              auth=True, query=matches.PROFILE_POLICY_PARAMS, errors=(404, 422, 503), path_params=_ID,
              description=_PROFILE_POLICIES_NOTE)
        for kind, a_kind, view in (("enterprise", "an enterprise", matches.enterprise_policies),
                                   ("resident", "a resident", matches.resident_policies))
    ),
    *_campaign_routes(),
    *_review_routes(),
    *_console_routes(),
    *_me_routes(),
    Route("GET", f"{API_PREFIX}/inbound-messages", inbound.list_inbound, "list_inbound_messages",
          "SMS replies and WeChat follows, unfollows and messages (senders masked)", "campaigns",
          (Reply(200, "InboundPage", "Newest first."),), auth=True, query=inbound.INBOUND_PARAMS, errors=(422,),
          description="Opt-outs among them (TD / 退订 replies, unfollows) already took effect; other replies wait "
          "here for staff."),
    *_me_pages(),
    *_callback_routes(),
)


def shadowed_words(path: str) -> dict[str, tuple[str, ...]]:
    """Per path parameter of ``path``, the literal segments of other routes it would also match.

    aiohttp answers a method the literal route lacks with the parameter route's handler (``GET
    /api/v1/policies/suggest`` reached ``get_policy``) and merges both routes' methods into the 405's
    ``Allow``; a parameter that can never be one of these words keeps each path to its own methods.
    """
    own = path.split("/")
    words: dict[str, list[str]] = {}
    for other in _PATHS:
        theirs = other.split("/")
        if other == path or len(theirs) != len(own):
            continue
        differ = [i for i, (a, b) in enumerate(zip(own, theirs, strict=True)) if a != b]
        if len(differ) == 1 and _PARAM.fullmatch(own[differ[0]]) and not _PARAM.fullmatch(theirs[differ[0]]):
            words.setdefault(own[differ[0]][1:-1], []).append(theirs[differ[0]])
    return {name: tuple(sorted(set(values))) for name, values in words.items()}


def _router_path(path: str) -> str:
    """``path`` with each parameter kept off the literal segments it shadows (see :func:`shadowed_words`)."""
    for name, words in shadowed_words(path).items():
        exclude = "|".join(re.escape(w) for w in words)
        path = path.replace(f"{{{name}}}", f"{{{name}:(?!(?:{exclude})$)[^{{}}/]+}}")
    return path


_PARAM = re.compile(r"\{\w+\}")
_PATHS = frozenset(route.path for route in ROUTES)


def setup_routes(app: web.Application) -> None:
    index: dict[tuple[str, str], Route] = {}
    for route in ROUTES:
        app.router.add_route(
            route.method, _router_path(route.path), route.handler, name=route.operation_id,
            expect_handler=expect_continue,
        )
        index[(route.method, route.path)] = route
    app[route_index_key] = index
