"""The campaign workflow: a policy's match run becomes a draft campaign (recipients, messages),
staff exclude/include and set the send time, a second staff member approves (hash recorded),
the campaign is scheduled; recipients give feedback or opt out through their link.

Dispatch (delivery rows, sending, receipts) lives beside this in ``dispatch*``/``outbox*``
modules and relies on: :func:`verify_approval`, :func:`render_for_recipient` (the body shape is
documented in :mod:`policy_push.workflow.messages`), :func:`opted_out_channels` and
:func:`prepare_pending_campaigns` for its leader-only tick.
"""

from .approval import (
    MAX_PROFILE_IDS,
    approval_hash,
    approve,
    cancel,
    exclude_recipients,
    get_campaign,
    include_recipients,
    rerender_messages,
    schedule,
    set_send_time,
    verify_approval,
)
from .campaigns import (
    MATERIAL_FIELDS,
    PolicyMatcher,
    PreparedCampaign,
    is_material_change,
    prepare_campaign,
    prepare_pending_campaigns,
    recount_summary,
)
from .errors import BadWorkflowInput, CampaignNotFound, SelfApproval, WrongState
from .feedback import (
    OPT_OUT_CHANNELS,
    RecipientContext,
    find_delivery,
    recipient_context,
    record_feedback,
    record_opt_out,
)
from .messages import MessageSettings, best_reason, build_message_bodies, render_for_recipient, short_code
from .preview import (
    CampaignView,
    RecipientLine,
    campaign_preview_text,
    list_recipients,
    load_campaign_view,
    render_preview_text,
)
from .recipients import ProfileFacts, choose_channel, masked_contacts, notified_channels, opted_out_channels

__all__ = [
    "MATERIAL_FIELDS",
    "MAX_PROFILE_IDS",
    "OPT_OUT_CHANNELS",
    "BadWorkflowInput",
    "CampaignNotFound",
    "CampaignView",
    "MessageSettings",
    "PolicyMatcher",
    "PreparedCampaign",
    "ProfileFacts",
    "RecipientContext",
    "RecipientLine",
    "SelfApproval",
    "WrongState",
    "approval_hash",
    "approve",
    "best_reason",
    "build_message_bodies",
    "campaign_preview_text",
    "cancel",
    "choose_channel",
    "exclude_recipients",
    "find_delivery",
    "get_campaign",
    "include_recipients",
    "is_material_change",
    "list_recipients",
    "load_campaign_view",
    "masked_contacts",
    "notified_channels",
    "opted_out_channels",
    "prepare_campaign",
    "prepare_pending_campaigns",
    "recipient_context",
    "record_feedback",
    "record_opt_out",
    "recount_summary",
    "render_for_recipient",
    "render_preview_text",
    "rerender_messages",
    "schedule",
    "set_send_time",
    "short_code",
    "verify_approval",
]
