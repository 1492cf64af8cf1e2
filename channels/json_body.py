"""Reading the JSON that a provider pushes to us or answers: one rule for what a bad body says."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from channels.errors import ProtocolError

__all__ = ["load_json"]

_SHAPES: dict[type, tuple[type, str]] = {list: (list, "a JSON array"), dict: (Mapping, "a JSON object")}


def load_json(body: object, what: str, shape: type | None = None, *, max_bytes: int | None = None) -> Any:
    """``body`` decoded (bytes or text; anything else is taken as already decoded), as ``shape`` (``list``
    or ``dict``) when given. Raises ``ProtocolError`` naming ``what`` when it is too large, not JSON or
    not of that shape."""
    if isinstance(body, bytes | str):
        if max_bytes is not None and len(body) > max_bytes:
            raise ProtocolError(f"{what} larger than {max_bytes // 1024} KiB")
        try:
            body = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"{what} is not JSON: {exc}") from exc
        except RecursionError:  # the parser recurses per level: 100,000 nested arrays are refused, not a crash
            raise ProtocolError(f"{what} is not JSON: nested too deeply") from None
    if shape is not None:
        kind, name = _SHAPES[shape]
        if not isinstance(body, kind):
            raise ProtocolError(f"{what} must be {name}")
    return body
