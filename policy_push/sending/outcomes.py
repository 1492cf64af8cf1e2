"""What a provider's word means for a delivery row: the one home of these decisions.

================================  ==================================================================
a send's result                   accepted -> ``sent``; permanent -> ``permanent_failure``;
(:func:`after_send`)              unreachable -> ``unreachable``; throttled -> ``created`` after the pause
                                  asked, no attempt spent; retryable -> ``created`` after a backoff, or
                                  ``technical_failure`` once attempts are used up; may have gone out ->
                                  no move: the claim is left to lapse and settle decides
a receipt                         delivered -> ``delivered``; unreachable -> ``unreachable``; any other
(:func:`after_receipt`)           failure -> ``permanent_failure`` (a message the provider took is never
                                  sent again on that channel)
an unknown outcome, after the     the provider has it -> ``sent`` (or its receipt's status); certainly not
claim lapsed (:func:`after_lapse`) -> ``created`` again; cannot tell yet but may soon (Tencent, until its
                                  ``report_wait_s``) -> no move, asked again later; nobody can tell ->
                                  ``created`` with the same id only while the provider drops repeats of
                                  that id (WeChat's ten minutes, halved for safety), else
                                  ``technical_failure`` / ``UNKNOWN_OUTCOME``
================================  ==================================================================

Every failure for good lets the recipient's next channel be tried (``sending.fallbacks``): a person
whose message had an unknown outcome may hear of the policy on two channels, never twice on one.
"""

from __future__ import annotations

import datetime as dt
import random

from channels import Answer, Outcome, SendResult
from policy_push.statuses import Code, DeliveryStatus, Waiting
from policy_push.storage.deliveries import Delivery, Move

from .rules import SendRules

__all__ = ["after_lapse", "after_receipt", "after_send", "receipt_status"]

_TEXT = 500


def receipt_status(delivered: bool, outcome: Outcome) -> DeliveryStatus:
    if delivered:
        return DeliveryStatus.DELIVERED
    if outcome is Outcome.UNREACHABLE:
        return DeliveryStatus.UNREACHABLE
    return DeliveryStatus.PERMANENT_FAILURE


def after_receipt(delivery_id: str, delivered: bool, outcome: Outcome, code: str | None, text: str | None) -> Move:
    return Move(
        delivery_id, receipt_status(delivered, outcome), {"provider_code": code or None},
        code=code or None, text=(text or "")[:_TEXT] or None,
    )  # fmt: skip


def after_send(
    row: Delivery, res: SendResult, *, now: dt.datetime, rules: SendRules, rng: random.Random, sim_per_real: float
) -> Move | None:
    """The move a send's result calls for; None when the message may have gone out (settle decides)."""
    common = {
        "provider": res.provider or None, "provider_code": res.code or None,
        "provider_text": (res.text or "")[:_TEXT] or None, "unsure_since": None,
    }  # fmt: skip
    text = res.text[:_TEXT] or None
    if res.outcome is Outcome.ACCEPTED:
        values = {**common, "provider_message_id": res.provider_message_id or None, "sent_at": now, "waiting_for": None}
        return Move(row.id, DeliveryStatus.SENT, values, code=res.code, claim_id=row.claim_id)
    if res.outcome is Outcome.PERMANENT:
        return Move(row.id, DeliveryStatus.PERMANENT_FAILURE, common, code=res.code, text=text, claim_id=row.claim_id)
    if res.outcome is Outcome.UNREACHABLE:
        return Move(row.id, DeliveryStatus.UNREACHABLE, common, code=res.code, text=text, claim_id=row.claim_id)
    if res.maybe_sent:
        return None
    if not res.provider_fault:  # throttled or out of quota: wait as asked, spend no attempt
        wait_s = max(res.retry_after_s or 0.0, 1.0) * sim_per_real
        values = {**common, "not_before": now + dt.timedelta(seconds=wait_s), "waiting_for": Waiting.THROTTLED.value}
        return Move(row.id, DeliveryStatus.CREATED, values, code=res.code, claim_id=row.claim_id)
    attempts = row.attempts + 1
    if rules.retry.exhausted(attempts):
        return Move(row.id, DeliveryStatus.TECHNICAL_FAILURE, {**common, "attempts": attempts}, code=res.code, text=text,
                    claim_id=row.claim_id)  # fmt: skip
    wait_s = rules.retry.delay_s(attempts, res, rng, clock_per_real_s=sim_per_real)
    values = {**common, "attempts": attempts, "not_before": now + dt.timedelta(seconds=wait_s), "waiting_for": Waiting.RETRY.value}
    return Move(row.id, DeliveryStatus.CREATED, values, code=res.code, text=text, claim_id=row.claim_id)


def after_lapse(
    row: Delivery, answer: Answer | None, *, now: dt.datetime, db_now: dt.datetime, rules: SendRules, resend_window_s: float,
    answer_wait_s: float = 0.0,
) -> Move | None:
    """The move for a row whose claim lapsed, given what its provider answers about it (``answer`` is
    None for a row never handed to a provider: no ``unsure_since``). None: no move yet, ask again later
    (the provider cannot tell now, but its records may show the send within ``answer_wait_s`` of it)."""
    attempts = row.attempts + 1
    if answer is None or row.unsure_since is None:
        if rules.retry.exhausted(attempts):
            return Move(row.id, DeliveryStatus.TECHNICAL_FAILURE, {"attempts": attempts},
                        code=Code.NOT_CALLED, text="lapsed too often", claim_id=row.claim_id)  # fmt: skip
        values = {"attempts": attempts, "not_before": now, "waiting_for": None}
        return Move(row.id, DeliveryStatus.CREATED, values, code=Code.NOT_CALLED, claim_id=row.claim_id)
    if answer.sent:
        base = {"provider": answer.provider, "provider_message_id": answer.provider_message_id or None,
                "sent_at": now, "unsure_since": None, "waiting_for": None}  # fmt: skip
        if answer.receipt is not None:
            r = answer.receipt
            status = receipt_status(r.delivered, r.outcome)
            return Move(row.id, status, {**base, "provider_code": r.code or None}, code=Code.FOUND_AT_PROVIDER,
                        text=r.code or None, claim_id=row.claim_id)  # fmt: skip
        return Move(row.id, DeliveryStatus.SENT, base, code=Code.FOUND_AT_PROVIDER, claim_id=row.claim_id)
    if answer.sent is False:
        if rules.retry.exhausted(attempts):
            return Move(row.id, DeliveryStatus.TECHNICAL_FAILURE, {"attempts": attempts, "unsure_since": None},
                        code=Code.NOT_AT_PROVIDER, text="lapsed too often", claim_id=row.claim_id)  # fmt: skip
        values = {"attempts": attempts, "not_before": now, "waiting_for": None, "unsure_since": None}
        return Move(row.id, DeliveryStatus.CREATED, values, code=Code.NOT_AT_PROVIDER, claim_id=row.claim_id)
    age_s = (db_now - row.unsure_since).total_seconds()
    if age_s < answer_wait_s:
        return None  # Tencent lists a send only once the carrier reports it: ask again before giving up
    if age_s < resend_window_s / 2 and not rules.retry.exhausted(attempts):
        # the provider drops a repeat of this id for a while yet: the same row (same id) goes again
        values = {"attempts": attempts, "not_before": now, "waiting_for": None}
        return Move(row.id, DeliveryStatus.CREATED, values, code=Code.RESEND_SAME_KEY, claim_id=row.claim_id)
    return Move(
        row.id, DeliveryStatus.TECHNICAL_FAILURE,
        {"provider": answer.provider, "provider_code": Code.UNKNOWN_OUTCOME.value, "attempts": attempts},
        code=Code.UNKNOWN_OUTCOME, text=f"{answer.provider} cannot tell whether it went out; not sent again on this channel",
        claim_id=row.claim_id,
    )  # fmt: skip
