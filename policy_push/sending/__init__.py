"""The send room: from an approved campaign to a final status per person and channel
(approved -> outbox -> provider -> receipt -> final).

=================  ==========================================================================
``rules``          quiet hours, the frequency cap, retries and leases, from the settings
``starting``       a due campaign's approval checked again, its delivery rows written
``claims``         due rows claimed under a lease, re-checked (consent, opt-outs, quiet hours)
``dispatch``       the sender: claim -> confirm -> provider call -> record; heartbeat, fencing
``rendering``      each claimed row's message, from the campaign's approved bodies
``outcomes``       what a send result, a receipt or a provider's answer means for a row
``fallbacks``      the recipient's next channel after one failed for good
``receipts``       receipts pushed by providers, and those that outran our record of the send
``settle``         rows whose claim lapsed (a dead worker); overdue receipts
``closing``        policies past their deadline: unsent rows and open campaigns cancelled
``retention``      contact data past the retention period erased
``providers``      the adapters and the router, wired from the settings (the only such place)
``ticks``          the pipeline the scheduler drives, and the lead
=================  ==========================================================================

The data it reads and writes goes through ``policy_push.storage`` (``deliveries``, ``delivery_history``,
``campaigns``, ``contacts``, ``receipts``); statuses and codes are those of ``policy_push.statuses``.
"""

from .dispatch import Dispatcher, DispatchStats
from .rules import SendRules
from .ticks import Pipeline, build_scheduler, make_clock, open_pipeline, worker_name

__all__ = ["DispatchStats", "Dispatcher", "Pipeline", "SendRules", "build_scheduler", "make_clock", "open_pipeline", "worker_name"]
