"""The channel error tree, and the one place where aiohttp's errors are translated into it.

```
ChannelError                      anything a channel raises
 + RetryableError                 trying again later may work
 |  + ProviderUnavailable         no connection was made: the message was certainly not sent
 |  + ProviderTimeout             no answer in time: the message MAY have been sent
 |  + ProviderServerError         HTTP 5xx or a garbled answer: the message MAY have been sent
 |  + ThrottledError              the provider (or our own limiter) asks us to slow down
 |     + QuotaExhaustedError      a daily quota is used up; ``retry_after_s`` points past midnight
 + PermanentError                 the same request will fail again
    + AuthError                   credentials, signature or token rejected for good
    + ProtocolError               the provider answered something we cannot understand
    + InvalidMessageError         the message breaks a template, length or content rule (never sent)
```

Adapters catch these inside ``Channel.send`` and turn them into per-message ``SendResult``s, so a
caller of ``send`` sees results, never exceptions. ``maybe_sent`` matters for SMS, where a send is
not idempotent: such a message must be settled with a receipt query before it is sent again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp

__all__ = [
    "AuthError",
    "ChannelError",
    "InvalidMessageError",
    "PermanentError",
    "ProtocolError",
    "ProviderServerError",
    "ProviderTimeout",
    "ProviderUnavailable",
    "QuotaExhaustedError",
    "RetryableError",
    "ThrottledError",
    "provider_errors",
]


class ChannelError(Exception):
    """Base of every error a channel raises; ``code`` is the provider's code when there is one."""

    maybe_sent: bool = False

    def __init__(self, message: str, *, code: str = "", retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.code = code or type(self).__name__
        self.retry_after_s = retry_after_s


class RetryableError(ChannelError):
    """Trying again later may succeed."""


class ProviderUnavailable(RetryableError):
    """The connection failed before the request was written: nothing was sent."""


class ProviderTimeout(RetryableError):
    """The provider did not answer in time; the request may have been processed."""

    maybe_sent = True


class ProviderServerError(RetryableError):
    """HTTP 5xx, a dropped connection or a garbled body after the request went out."""

    maybe_sent = True


class ThrottledError(RetryableError):
    """Too fast, or out of quota: wait ``retry_after_s`` (when known) and try again."""


class QuotaExhaustedError(ThrottledError):
    """A daily quota is used up; ``retry_after_s`` runs to the next quota day."""


class PermanentError(ChannelError):
    """The same request will fail again; do not retry."""


class AuthError(PermanentError):
    """Credentials, signature or token rejected even after a refresh."""


class ProtocolError(PermanentError):
    """The provider's answer does not follow its documented protocol."""


class InvalidMessageError(PermanentError):
    """A message breaks a template, length or content rule and was not sent."""


@contextmanager
def provider_errors(provider: str) -> Iterator[None]:
    """Translate aiohttp and timeout errors raised inside the block into the channel tree.

    Most specific first: a connector error means the request never left (safe to resend), whereas a
    disconnect or timeout after connecting means the provider may have acted on it.
    """
    try:
        yield
    except ChannelError:
        raise
    except aiohttp.ClientConnectorError as exc:
        raise ProviderUnavailable(f"{provider}: cannot connect ({exc.os_error})") from exc
    except aiohttp.ConnectionTimeoutError as exc:
        raise ProviderUnavailable(f"{provider}: connect timed out") from exc
    except TimeoutError as exc:
        raise ProviderTimeout(f"{provider}: no answer in time") from exc
    except aiohttp.ServerDisconnectedError as exc:
        raise ProviderServerError(f"{provider}: server disconnected") from exc
    except aiohttp.ClientPayloadError as exc:
        raise ProviderServerError(f"{provider}: truncated answer") from exc
    except (aiohttp.ContentTypeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProviderServerError(f"{provider}: unreadable answer ({exc})") from exc
    except aiohttp.ClientError as exc:
        raise ProviderServerError(f"{provider}: HTTP client error ({type(exc).__name__})") from exc
