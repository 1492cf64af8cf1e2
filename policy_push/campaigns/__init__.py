"""The campaign room: from a policy to an approved list of people and texts (policy -> draft -> approved).

=================  ==========================================================================
``drafting``       a policy's match run becomes a draft (older drafts superseded), for one
                   policy or every policy changed without one (the leader's tick)
``recipients``     who gets the message on which channel, and the counts staff see
``messages``       the text of each channel as the approver saw it, filled per recipient
``preview``        the staff read model: counts, histogram, texts, top and may-qualify rows
``approval``       four eyes: approve, the one check of an approval, schedule, cancel
``editing``        exclude / include recipients, the send time, texts rendered again
``feedback``       有用 / 不相关 / 已申报 / 退订 from the message link; opt-outs
``reminders``      deadline reminders, approved by reference to their announcement
=================  ==========================================================================

The send room (``policy_push.sending``) takes over a campaign once it is scheduled; it relies on
:func:`verify_approval` and :func:`render_for_recipient` from here.
"""

from .approval import approval_hash, approve, cancel, schedule, verify_approval
from .drafting import (
    MATERIAL_FIELDS,
    PolicyMatcher,
    PreparedCampaign,
    is_material_change,
    prepare_campaign,
    prepare_pending_campaigns,
)
from .editing import MAX_PROFILE_IDS, exclude_recipients, include_recipients, rerender_messages, set_send_time
from .feedback import (
    RecipientContext,
    delivery_by_code,
    link_expires,
    recipient_context,
    record_feedback,
    record_opt_out,
)
from .messages import (
    MessageSettings,
    benefit_text,
    best_reason,
    build_message_bodies,
    quoted_reason,
    render_for_recipient,
    shown_reasons,
)
from .preview import (
    CampaignView,
    RecipientLine,
    campaign_json,
    campaign_preview_text,
    cursor_of,
    decode_cursor,
    encode_cursor,
    list_recipients,
    load_campaign_view,
)
from .reminders import create_due_reminders

__all__ = [
    "MATERIAL_FIELDS",
    "MAX_PROFILE_IDS",
    "CampaignView",
    "MessageSettings",
    "PolicyMatcher",
    "PreparedCampaign",
    "RecipientContext",
    "RecipientLine",
    "approval_hash",
    "approve",
    "benefit_text",
    "best_reason",
    "build_message_bodies",
    "campaign_json",
    "campaign_preview_text",
    "cancel",
    "create_due_reminders",
    "cursor_of",
    "decode_cursor",
    "delivery_by_code",
    "encode_cursor",
    "exclude_recipients",
    "include_recipients",
    "is_material_change",
    "link_expires",
    "list_recipients",
    "load_campaign_view",
    "prepare_campaign",
    "prepare_pending_campaigns",
    "quoted_reason",
    "recipient_context",
    "record_feedback",
    "record_opt_out",
    "render_for_recipient",
    "rerender_messages",
    "schedule",
    "set_send_time",
    "shown_reasons",
    "verify_approval",
]
