"""Delivery receipts and events that providers push to us: parsed into one ``Receipt`` shape.

* Aliyun ``SmsReport`` (HTTP batch mode): a JSON array; answer ``ALIYUN_RECEIPT_ACK`` with HTTP 200.
  Aliyun does not deduplicate: the same report may come again, so key on ``Receipt.key``.
* Tencent status callback: a JSON array of ``user_receive_time``, ``nationcode``, ``mobile``,
  ``report_status`` (SUCCESS / FAIL), ``errmsg``, ``description`` and ``sid`` (the SerialNo the send
  returned); answer ``{"result": 0, "errmsg": "OK"}`` (``channels.replies.TENCENT_CALLBACK_ACK``).
  The same reports can be pulled (``TencentSms.pull_send_status``); pulled rows also carry the
  ``SessionContext`` of the send, which names our delivery ids (``delivery_ids_of_context``).
* WeChat ``TEMPLATESENDJOBFINISH``: an XML event on the account's server URL, signed with the
  ``signature``/``timestamp``/``nonce`` query parameters; answer ``success``. Every other WeChat
  push (follows, subscription results, encrypted mode) is parsed by ``channels.wechat_events``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

from channels.errors import ProtocolError
from channels.json_body import load_json
from channels.outcome import Outcome
from channels.rate_limit import CHINA_TZ
from channels.safe_xml import parse_xml
from channels.signing import wechat_callback_signature

__all__ = [
    "ALIYUN_RECEIPT_ACK",
    "Receipt",
    "delivery_ids_of_context",
    "parse_aliyun_sms_report",
    "parse_tencent_pulled_status",
    "parse_tencent_status_callback",
    "parse_wechat_event",
    "session_context_for",
    "verify_wechat_signature",
]

#: What Aliyun expects back; anything else (or a timeout) makes it push again after 1, 5, 10 minutes.
ALIYUN_RECEIPT_ACK = {"code": 0, "msg": "接收成功"}

_WECHAT_STATUS: dict[str, Outcome] = {
    "success": Outcome.ACCEPTED,
    "failed:user block": Outcome.UNREACHABLE,
    "failed: system failed": Outcome.RETRYABLE,
}


@dataclass(frozen=True, slots=True)
class Receipt:
    """A provider's later word on a message it accepted.

    ``delivered`` is True only for a confirmed delivery. ``outcome`` says what to do on failure:
    ``UNREACHABLE`` (try another channel), ``RETRYABLE`` or ``PERMANENT``; ACCEPTED when delivered.
    """

    provider: str
    provider_message_id: str
    recipient: str
    delivered: bool
    outcome: Outcome
    code: str
    text: str = ""
    delivery_id: str = ""
    reported_at: datetime | None = None
    #: the delivery ids that shared the send (Tencent SessionContext of a several-number call);
    #: the recipient tells which of them this receipt is for
    context_ids: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str, str]:
        """Deduplication key: a provider may push the same report more than once."""
        return (self.provider, self.provider_message_id, self.recipient)


def _aliyun_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA_TZ)
    except ValueError:
        return None


# Carrier error codes in receipts that mean the number itself is unusable (empty, suspended, absent).
_ALIYUN_UNREACHABLE_RECEIPT = frozenset({"MK:0001", "MK:0012", "MI:0013", "IC:0015", "UNDELIV", "EMPTY_NUMBER"})


def aliyun_verdict(delivered: bool, err_code: str) -> Outcome:
    """What an Aliyun delivery verdict (an SmsReport, or a QuerySendDetails row) means for the message."""
    if delivered:
        return Outcome.ACCEPTED
    return Outcome.UNREACHABLE if err_code in _ALIYUN_UNREACHABLE_RECEIPT else Outcome.PERMANENT


#: the latest Unix time a provider's report may name (2100-01-01): beyond it a number is garbage, and
#: ``datetime.fromtimestamp`` of 99999999999999999999 raises OverflowError
_LATEST_UNIX = 4_102_444_800


def unix_time(value: object, what: str) -> datetime | None:
    """A provider's Unix-seconds time as an aware datetime; None when absent or not digits;
    ``ProtocolError`` when out of range."""
    text = str(value).strip() if value is not None else ""
    if not text.isdigit():
        return None
    if len(text) > 12 or int(text) > _LATEST_UNIX:
        raise ProtocolError(f"{what} {text[:24]} is not a time")
    return datetime.fromtimestamp(int(text), CHINA_TZ)


def _plain(value: object, *, empty: bool = False) -> bool:
    if value is None:
        return empty
    if isinstance(value, bool) or not isinstance(value, str | int):
        return False
    return empty or bool(str(value).strip())


def parse_aliyun_sms_report(body: bytes | str) -> list[Receipt]:
    """Parse an Aliyun SmsReport push (a JSON array of reports)."""
    items = load_json(body, "SmsReport", list)
    receipts = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "biz_id" not in item or "phone_number" not in item:
            raise ProtocolError(f"SmsReport item {i} lacks biz_id or phone_number")
        # a report names its message and phone: an empty or structured one can never be matched or kept
        if not _plain(item["biz_id"]) or not _plain(item["phone_number"]) or not _plain(item.get("out_id"), empty=True):
            raise ProtocolError(f"SmsReport item {i}: biz_id and phone_number must be non-empty strings")
        success = item.get("success") in (True, "true")
        code = str(item.get("err_code", ""))
        outcome = aliyun_verdict(success, code)
        receipts.append(
            Receipt(
                provider="aliyun_sms",
                provider_message_id=str(item["biz_id"]),
                recipient=str(item["phone_number"]),
                delivered=success,
                outcome=outcome,
                code=code,
                text=str(item.get("err_msg", "")),
                delivery_id=str(item.get("out_id") or ""),
                reported_at=_aliyun_time(item.get("report_time")),
            )
        )
    return receipts


def verify_wechat_signature(token: str, signature: str, timestamp: str, nonce: str) -> bool:
    """True when ``signature`` is sha1(sorted(token, timestamp, nonce)), compared in constant time."""
    return hmac.compare_digest(wechat_callback_signature(token, timestamp, nonce), signature or "")


def parse_wechat_event(body: bytes) -> Receipt | None:
    """Parse a TEMPLATESENDJOBFINISH event; None for any other event or message type.

    The XML is refused if it declares a DTD or entities (no entity expansion attacks) or is large.
    """
    root = parse_xml(body, "WeChat event")
    fields = {child.tag: (child.text or "").strip() for child in root}
    if fields.get("MsgType") != "event" or fields.get("Event") != "TEMPLATESENDJOBFINISH":
        return None
    status = fields.get("Status", "")
    outcome = _WECHAT_STATUS.get(status, Outcome.PERMANENT)
    created = fields.get("CreateTime", "")
    return Receipt(
        provider="wechat",
        provider_message_id=fields.get("MsgID", ""),
        recipient=fields.get("FromUserName", ""),
        delivered=outcome is Outcome.ACCEPTED,
        outcome=outcome,
        code=status,
        reported_at=unix_time(created, "CreateTime"),
    )


# ---- Tencent -------------------------------------------------------------------------------------

#: SessionContext is limited to 512 bytes; ids are joined with a separator no delivery id contains.
_CONTEXT_MAX_BYTES = 512
_CONTEXT_SEP = ","


def session_context_for(delivery_ids: list[str] | tuple[str, ...]) -> str | None:
    """The SessionContext naming ``delivery_ids``, or None when they do not fit in 512 bytes.

    One id is itself; several are joined with commas (the phone of a pulled status tells which id is
    whose, since a number appears once per call). An id containing a comma cannot be named.
    """
    if any(_CONTEXT_SEP in d or not d for d in delivery_ids):
        return None
    context = _CONTEXT_SEP.join(delivery_ids)
    return context if len(context.encode()) <= _CONTEXT_MAX_BYTES else None


def delivery_ids_of_context(context: str) -> tuple[str, ...]:
    """The delivery ids a SessionContext written by ``session_context_for`` names."""
    return tuple(part for part in (context or "").split(_CONTEXT_SEP) if part)


_TENCENT_UNREACHABLE_RECEIPT = _ALIYUN_UNREACHABLE_RECEIPT


def _tencent_receipt(
    *, serial: str, phone: str, status: str, code: str, text: str, at: datetime | None, context: str = ""
) -> Receipt:
    delivered = status == "SUCCESS"
    if delivered:
        outcome = Outcome.ACCEPTED
    elif code in _TENCENT_UNREACHABLE_RECEIPT:
        outcome = Outcome.UNREACHABLE
    else:
        outcome = Outcome.PERMANENT
    ids = delivery_ids_of_context(context)
    return Receipt(
        provider="tencent_sms",
        provider_message_id=serial,
        recipient=phone,
        delivered=delivered,
        outcome=outcome,
        code=code or status,
        text=text,
        delivery_id=ids[0] if len(ids) == 1 else "",
        reported_at=at,
        context_ids=ids if len(ids) > 1 else (),
    )


def _local_phone(nationcode: object, mobile: object, where: str) -> str:
    phone = str(mobile or "").strip()
    if str(nationcode or "86") != "86" or not phone.isdigit():
        raise ProtocolError(f"{where}: not a mainland mobile number")
    return phone


def parse_tencent_status_callback(body: bytes | str) -> list[Receipt]:
    """Parse a Tencent status callback (a JSON array of reports)."""
    items = load_json(body, "Tencent status callback", list)
    receipts = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not item.get("sid") or "report_status" not in item:
            raise ProtocolError(f"Tencent status item {i} lacks sid or report_status")
        receipts.append(
            _tencent_receipt(
                serial=str(item["sid"]),
                phone=_local_phone(item.get("nationcode"), item.get("mobile"), f"Tencent status item {i}"),
                status=str(item["report_status"]),
                code=str(item.get("errmsg") or ""),
                text=str(item.get("description") or ""),
                at=_aliyun_time(item.get("user_receive_time")),
            )
        )
    return receipts


def parse_tencent_pulled_status(rows: object) -> list[Receipt]:
    """Receipts from ``PullSmsSendStatusSet`` (either pull API): rows without a report are skipped."""
    if not isinstance(rows, list):
        raise ProtocolError("PullSmsSendStatusSet must be a list")
    receipts = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not row.get("SerialNo"):
            raise ProtocolError(f"pulled status {i} lacks SerialNo")
        status = str(row.get("ReportStatus") or "")
        if not status:
            continue  # sent, but the carrier has not reported yet
        stamp = row.get("UserReceiveTime")
        receipts.append(
            _tencent_receipt(
                serial=str(row["SerialNo"]),
                phone=_local_phone(row.get("CountryCode"), row.get("SubscriberNumber"), f"pulled status {i}"),
                status=status,
                code=str(row.get("Description") or ""),
                text=str(row.get("Description") or ""),
                at=unix_time(stamp, "ReceiveDate") if isinstance(stamp, int) and stamp > 0 else None,
                context=str(row.get("SessionContext") or ""),
            )
        )
    return receipts
