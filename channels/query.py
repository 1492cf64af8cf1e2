"""Asking a provider what became of a message whose send outcome is unknown (``Channel.query``).

An outcome is unknown when the request may have reached the provider but no answer came back: a
timeout after the request went out, a dropped connection, or a sender that died mid-call. Sending
again is safe only where the provider can tell us it has the message, or drops a repeat of it:

* Aliyun keeps a record of every send (``QuerySendDetails``), so it can be asked;
* WeChat drops a repeat of the same ``client_msg_id`` for ten minutes (``Channel.resend_window_s``);
* JPush drops a repeat of the same ``cid`` for a day, but only the adapter that pushed it knows the
  cid, so it can answer only for its own pushes (it replays them under their cid);
* Tencent keeps no record of a send until the carrier reports it (``PullSmsSendStatusByPhoneNumber``,
  whose SessionContext names our delivery ids): a send found there is known; one not found stays
  unknown, never "not sent", and is never resent.

The application decides what to do with an answer (``policy_push.sending.settle``); this module only
says what a provider answers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from channels.receipts import Receipt

__all__ = ["Answer", "Inquiry"]


@dataclass(frozen=True, slots=True)
class Inquiry:
    """A message whose send outcome is unknown, as a provider can be asked about it."""

    delivery_id: str
    #: the phone number, openid or registration id it went to
    recipient: str
    #: the logical template it was rendered from
    template: str = ""
    #: the earliest moment (UTC, real time) it may have gone out; bounds the provider's records to read
    since: dt.datetime | None = None
    #: other strings that identify the message in the provider's records (e.g. a link code in an SMS)
    markers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Answer:
    """What a provider says about an :class:`Inquiry`."""

    delivery_id: str
    provider: str
    #: True: the provider has the message; False: it certainly does not; None: nobody can tell
    sent: bool | None
    provider_message_id: str = ""
    #: the provider's verdict on delivery, when it already has one (delivered, or failed and why)
    receipt: Receipt | None = None
