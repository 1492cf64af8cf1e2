"""The one way the engine reads XML from outside: bounded in size, with no DTD and no entities."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from channels.errors import ProtocolError

__all__ = ["MAX_XML_BYTES", "parse_xml"]

MAX_XML_BYTES = 64 * 1024


def parse_xml(body: bytes | str, what: str) -> ET.Element:
    """The root element of ``body``; ``ProtocolError`` naming ``what`` for anything else.

    A DTD or an entity declaration is refused outright (no entity-expansion attacks), as is a body
    over 64 KiB: every WeChat push is a few hundred bytes.
    """
    raw = body.encode() if isinstance(body, str) else body
    if len(raw) > MAX_XML_BYTES:
        raise ProtocolError(f"{what} larger than 64 KiB")
    upper = raw.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
        raise ProtocolError(f"{what} declares a DTD")
    try:
        return ET.fromstring(raw)
    except ET.ParseError as exc:
        raise ProtocolError(f"{what} is not XML: {exc}") from exc
