"""Prometheus ``/metrics``: what each process did (requests, ticks, its sender) and what the database holds
(deliveries by channel, provider and status, provider error codes, outbox depth, receipt lag), plus the
match index. Counts and durations only: no label ever carries an id, a path with an id or personal data
(routes are labelled by their template). What each metric means: docs/operations.md.

The registry is the app's own (several apps in one test process must not share counters); database
figures are read when the page is asked for, as gauges.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from policy_push.statuses import DeliveryStatus
from policy_push.storage.campaign_tables import DeliveryRow

from .access import route_template

__all__ = ["Metrics", "metrics_key", "metrics_middleware", "metrics_page"]

# the `_created` series double the page and no dashboard of ours reads them
disable_created_metrics()

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _Snapshot(Collector):
    """Families computed at scrape time (see :func:`metrics_page`)."""

    def __init__(self) -> None:
        self.families: list[Metric] = []

    def collect(self) -> Iterator[Metric]:
        yield from self.families


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "policy_push_http_requests", "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "policy_push_http_request_duration_seconds", "Time to answer an HTTP request, by method and route template.",
            ["method", "route"], buckets=_LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.snapshot = _Snapshot()
        self.registry.register(self.snapshot)


metrics_key = web.AppKey("metrics", Metrics)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        metrics = request.app.get(metrics_key)
        if metrics is not None:
            route = route_template(request)
            metrics.requests.labels(request.method, route, str(status)).inc()
            metrics.latency.labels(request.method, route).observe(time.perf_counter() - started)


def _gauge(name: str, doc: str, labels: list[str], rows: dict[tuple[str, ...], float]) -> GaugeMetricFamily:
    g = GaugeMetricFamily(name, doc, labels=labels)
    for key, value in sorted(rows.items()):
        g.add_metric(list(key), value)
    return g


async def _database_families(app: web.Application) -> list[Metric]:
    from .keys import session_factory_key

    sessions = app.get(session_factory_key)
    if sessions is None:
        return []
    d = DeliveryRow
    now = dt.datetime.now(dt.UTC)
    async with sessions() as s:
        by_status = {
            (ch, prov or "", st): float(n)
            for ch, prov, st, n in await s.execute(
                select(d.channel, d.provider, d.status, func.count()).group_by(d.channel, d.provider, d.status)
            )
        }
        errors = {
            (ch, prov or "", code): float(n)
            for ch, prov, code, n in await s.execute(
                select(d.channel, d.provider, d.provider_code, func.count())
                .where(d.provider_code.is_not(None), d.status != DeliveryStatus.DELIVERED.value)
                .group_by(d.channel, d.provider, d.provider_code)
            )
        }
        created = d.status == DeliveryStatus.CREATED.value
        due = {(ch,): float(n) for ch, n in await s.execute(
            select(d.channel, func.count()).where(created, d.not_before <= now).group_by(d.channel))}  # fmt: skip
        waiting = {(ch,): float(n) for ch, n in await s.execute(
            select(d.channel, func.count()).where(created, d.not_before > now).group_by(d.channel))}  # fmt: skip
        oldest_sent = {ch: t for ch, t in await s.execute(
            select(d.channel, func.min(d.sent_at)).where(d.status == DeliveryStatus.SENT.value).group_by(d.channel))}  # fmt: skip
    lag = {(ch,): max(0.0, (now - t).total_seconds()) for ch, t in oldest_sent.items() if t is not None}
    return [
        _gauge("policy_push_deliveries", "Deliveries in the database by channel, provider and status.",
               ["channel", "provider", "status"], by_status),
        _gauge("policy_push_provider_errors", "Deliveries whose last provider answer was an error, by channel, provider and code.",
               ["channel", "provider", "code"], errors),
        _gauge("policy_push_outbox_due", "Outbox depth: created deliveries due now, by channel.", ["channel"], due),
        _gauge("policy_push_outbox_waiting", "Created deliveries held for later (quiet hours, cap, retry), by channel.",
               ["channel"], waiting),
        _gauge("policy_push_receipt_lag_seconds", "Age of the oldest sent delivery still waiting for its receipt, by channel.",
               ["channel"], lag),
    ]  # fmt: skip


def _process_families(app: web.Application) -> list[Metric]:
    from .keys import match_service_key, pipeline_key, scheduler_key

    out: list[Metric] = []
    scheduler = app.get(scheduler_key)
    if scheduler is not None:
        runs = CounterMetricFamily("policy_push_tick_runs", "Tick runs in this process.", labels=["tick"])
        fails = CounterMetricFamily("policy_push_tick_failures", "Tick runs that raised, in this process.", labels=["tick"])
        seconds = CounterMetricFamily("policy_push_tick_seconds", "Real seconds spent in finished tick runs.", labels=["tick"])
        last = GaugeMetricFamily("policy_push_tick_last_duration_seconds", "Duration of the last run of each tick.", labels=["tick"])
        for name, st in sorted(scheduler.stats().items()):
            runs.add_metric([name], st.runs)
            fails.add_metric([name], st.failures)
            seconds.add_metric([name], st.total_duration_s)
            if st.last_duration_s is not None:
                last.add_metric([name], st.last_duration_s)
        out += [runs, fails, seconds, last]
        out.append(GaugeMetricFamily("policy_push_scheduler_leader", "1 when this process holds a scheduler lead.",
                                     value=1.0 if scheduler.is_leader else 0.0))  # fmt: skip
        leads = GaugeMetricFamily("policy_push_scheduler_lead", "1 when this process holds the lead, by lead.", labels=["lead"])
        for lead, held in sorted(scheduler.leads().items()):
            leads.add_metric([lead], 1.0 if held else 0.0)
        out.append(leads)
    pipeline = app.get(pipeline_key)
    if pipeline is not None:
        stats: dict[str, Any] = vars(pipeline.dispatcher.stats)
        c = CounterMetricFamily("policy_push_dispatch_events", "This process's sender: rows claimed, accepted, "
                                "released, leases lost, calls fenced …, by event.", labels=["event"])  # fmt: skip
        for name, value in sorted(stats.items()):
            if isinstance(value, int | float):
                c.add_metric([name], value)
        out.append(c)
        out.append(GaugeMetricFamily("policy_push_dispatch_in_flight", "Rows this process holds a claim on.",
                                     value=pipeline.dispatcher.in_flight))  # fmt: skip
    service = app.get(match_service_key)
    if service is not None:
        st = service.stats()
        size = GaugeMetricFamily("policy_push_match_index_profiles", "Profiles in the match index, by audience.", labels=["audience"])
        for audience, n in sorted(st["profiles"].items()):
            size.add_metric([audience], n)
        out += [
            size,
            GaugeMetricFamily("policy_push_match_index_policies", "Policies in the match index.", value=st["policies"]),
            GaugeMetricFamily("policy_push_match_index_ready", "1 when the match index is built.", value=1.0 if st["ready"] else 0.0),
        ]
    return out


async def metrics_page(request: web.Request) -> web.Response:
    metrics = request.app[metrics_key]
    families = _process_families(request.app)
    try:
        families += await _database_families(request.app)
        up = 1.0
    except Exception:  # the page still answers; the gauge says the database part is missing
        up = 0.0
    families.append(GaugeMetricFamily("policy_push_database_up", "1 when the database answered this scrape.", value=up))
    metrics.snapshot.families = families
    body = generate_latest(metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
