"""The staff console: server-rendered Chinese pages (Jinja2, no JavaScript needed) for officers.

Every page is a route of the one routes table (``policy_push.web.routes``) with ``page=True`` and a
role, so the auth middleware (``policy_push.web.auth``) guards them like the API: without a login a
page redirects to ``/staff/login``, a lower role gets 403, and every form carries the CSRF token."""

from .audit_page import audit_log_page
from .campaign_pages import (
    campaign_list,
    campaign_preview,
    campaign_progress,
    post_approve,
    post_cancel,
    post_exclude,
    post_include,
    post_send_time,
)
from .dashboard import dashboard
from .inbox_pages import CONTACT_DECIDER, contact_decide, contacts_page, inbound_page
from .login import login_form, login_submit, logout
from .policy_pages import policy_detail, policy_form, policy_import, policy_list, policy_save
from .profile_pages import profile_lookup, profile_reveal, profile_search
from .render import static_file
from .review_pages import review_confirm, review_create, review_item, review_list, review_reject

__all__ = [
    "CONTACT_DECIDER",
    "audit_log_page",
    "campaign_list",
    "campaign_preview",
    "campaign_progress",
    "contact_decide",
    "contacts_page",
    "dashboard",
    "inbound_page",
    "login_form",
    "login_submit",
    "logout",
    "policy_detail",
    "policy_form",
    "policy_import",
    "policy_list",
    "policy_save",
    "post_approve",
    "post_cancel",
    "post_exclude",
    "post_include",
    "post_send_time",
    "profile_lookup",
    "profile_reveal",
    "profile_search",
    "review_confirm",
    "review_create",
    "review_item",
    "review_list",
    "review_reject",
    "static_file",
]
