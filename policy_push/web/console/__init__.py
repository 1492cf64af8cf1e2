"""The staff console: server-rendered Chinese pages (Jinja2, no JavaScript needed) for officers.

Every page is a route of the one routes table (``policy_push.web.routes``) with ``page=True`` and a
role, so the auth middleware (``policy_push.web.auth``) guards them like the API: without a login a
page redirects to ``/staff/login``, a lower role gets 403, and every form carries the CSRF token."""

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
from .login import login_form, login_submit, logout
from .render import static_file

__all__ = [
    "campaign_list",
    "campaign_preview",
    "campaign_progress",
    "dashboard",
    "login_form",
    "login_submit",
    "logout",
    "post_approve",
    "post_cancel",
    "post_exclude",
    "post_include",
    "post_send_time",
    "static_file",
]
