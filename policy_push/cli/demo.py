"""``policy-push demo``: the whole flow on embedded SQLite with the bundled Panjin sample.

The story, told on a simulated clock that runs an hour a second: at 20:45 on 26 November 2026 a
policy officer (王科员) imports the sample, every open policy is matched and drafted, one draft is
previewed, and a second officer (李科长) approves them all.  Quiet hours start at 21:00, so most
messages wait for 08:00; some providers refuse some recipients (the simulators inject faults), so
fallback channels take over; a deadline reminder goes out for a policy closing soon; and the
frequency cap holds back people who would otherwise hear about more than three policies a week.
Everything goes through the real protocols to the local simulators, and receipts come back
through the service's own callback endpoints.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from channels.simulators import Faults, SimulatorSet, start_all
from policy_push.config import Settings
from policy_push.importing import ImportReport, normalise_kind
from policy_push.logs import configure_logging
from policy_push.statuses import DELIVERY_FAILED_FOR_GOOD, DELIVERY_REACHED, DeliveryStatus, Purpose, Waiting
from policy_push.storage import campaigns as campaign_store
from policy_push.storage import create_engine, delivery_history, upgrade

from .failures import CommandFailed, Exit
from .help import add_documented
from .listen import bind_listener, check_port_free
from .records import import_file

SAMPLE_FILES = (("policies", "policies.jsonl"), ("enterprises", "enterprises.jsonl"), ("residents", "residents.jsonl"))
DEMO_TOKEN = "demo-token"
PREPARER = "王科员"
APPROVER = "李科长"
PREVIEW_POLICY = "pj-gxj-2026-012"
#: the sample's evaluation day; 20:45 local, a quarter of an hour before quiet hours
DEMO_START = dt.datetime(2026, 11, 26, 20, 45, tzinfo=ZoneInfo("Asia/Shanghai"))
#: simulated seconds per real second
TIME_FACTOR = 3600.0
#: the demo stops once the simulated clock passes this and nothing is left to send now (on a slow
#: machine the clock runs on while the morning's messages go out; the demo waits for them) ...
DEMO_END = dt.datetime(2026, 11, 27, 14, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
#: ... or at the latest this
DEMO_LIMIT = dt.datetime(2026, 11, 29, 14, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
#: provider refusals injected so that fallbacks happen (codes from the real protocols)
DEMO_FAULTS = {
    "wechat": Faults(error_rates={"43004": 0.15}, seed=7),  # 需要接收者关注: unreachable on WeChat
    "jpush": Faults(error_rates={"1011": 0.2}, seed=8),  # no such registration id: unreachable in the app
    "aliyun": Faults(error_rates={"isv.MOBILE_NUMBER_ILLEGAL": 0.01}, lost_receipt_rate=0.05, seed=9),
}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_documented(sub, "demo", "run the whole flow on embedded SQLite with the Panjin sample and local provider simulators", _demo.__doc__)
    p.add_argument("--data-dir", type=Path, help="keep the demo's data here (default: a new temporary directory)")
    p.add_argument("--port", type=int, default=8080, help="port for the API (default 8080; 0 = any free port)")
    p.add_argument("--exit", action="store_true", help="stop after the demo run instead of serving")
    p.set_defaults(handler=_demo)


def sample_path(name: str) -> Path:
    return Path(str(resources.files("policy_push") / "sample" / name))


def sample_counts() -> str:
    """What the bundled sample holds, counted from its files ("24 policies, 400 enterprises, …")."""
    counts = []
    for kind, name in SAMPLE_FILES:
        with sample_path(name).open("rb") as fh:
            counts.append(f"{sum(1 for line in fh if line.strip())} {kind}")
    return ", ".join(counts)


#: the demo's profiles are fictional; it vouches for their phones so that its sends show the whole
#: pipeline (``policy_push.reach``: an import that names no register is never pushed to)
SAMPLE_PHONE_SOURCE = "演示样例名册（虚构数据，仅供试用）"


async def prepare(settings: Settings, *, quiet: bool = False) -> dict[str, ImportReport]:
    """Migrate the database and import the bundled sample (idempotent)."""
    from policy_push.runtime import open_runtime

    engine = create_engine(settings)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    reports = {}
    async with open_runtime(settings) as runtime:
        for kind, name in SAMPLE_FILES:
            source = None if normalise_kind(kind) == "policy" else SAMPLE_PHONE_SOURCE
            reports[kind] = report = await import_file(
                runtime, kind, sample_path(name), actor=PREPARER, quiet=quiet, phone_source=source
            )
            print(f"  {kind:<12} {report.summary()}")
    return reports


@dataclass
class Funnel:
    matched: int = 0
    may_qualify: int = 0
    approved: int = 0
    #: campaigns by purpose (announcements, reminders), as the store counts them
    by_purpose: dict[str, int] = field(default_factory=dict)
    by_channel: dict[str, dict[str, int]] = field(default_factory=dict)
    fell_back: int = 0
    waiting: dict[str, int] = field(default_factory=dict)
    #: the frequency cap as configured, for the line about it
    cap: str = ""

    def lines(self) -> list[str]:
        sent = {ch: sum(n for s, n in st.items() if s in DELIVERY_REACHED) for ch, st in self.by_channel.items()}
        delivered = {ch: st.get(DeliveryStatus.DELIVERED, 0) for ch, st in self.by_channel.items()}
        failed = {ch: sum(st.get(s, 0) for s in DELIVERY_FAILED_FOR_GOOD) for ch, st in self.by_channel.items()}
        out = [
            f"matched            {self.matched:>6}  eligible (+{self.may_qualify} may qualify, missing data)",
            f"approved           {self.approved:>6}  recipients in {self.by_purpose.get(Purpose.ANNOUNCE, 0)} campaigns "
            f"(+{self.by_purpose.get(Purpose.REMINDER, 0)} reminder campaigns)",
        ]
        for ch in sorted(self.by_channel):
            # JPush pushes no receipts: "accepted" is all an app message can be known to be
            fate = "no receipts from JPush" if ch == "app" else f"delivered {delivered[ch]}"
            out.append(f"sent by {ch:<10} {sent[ch]:>6}  → {fate}, failed for good {failed[ch]}")
        out.append(f"fell back          {self.fell_back:>6}  messages moved to the next channel after a failure")
        for reason, n in sorted(self.waiting.items()):
            label = {Waiting.QUIET_HOURS: "quiet hours", Waiting.FREQUENCY_CAP: f"the frequency cap ({self.cap})",
                     Waiting.RETRY: "a retry", Waiting.THROTTLED: "the provider's rate", "due": "their turn (due now)"}  # fmt: skip
            out.append(f"waiting            {n:>6}  for {label.get(reason, reason)}")  # type: ignore[call-overload]
        return out


async def funnel(sessions: Any, settings: Settings) -> Funnel:
    f = Funnel(cap=f"{settings.frequency_cap} in {settings.frequency_cap_days:g} days")
    async with sessions() as s:
        f.by_purpose = await campaign_store.count_by_purpose(s)
        f.matched, f.may_qualify, f.approved = await campaign_store.announcement_funnel(s)
        for (channel, status), n in (await delivery_history.counts(s)).items():
            f.by_channel.setdefault(channel, {})[status] = n
        f.fell_back = await delivery_history.fallbacks_made(s)
        f.waiting = await delivery_history.waiting(s)
    return f


async def officers(runtime: Any) -> dict[str, tuple[str, str]]:
    """The demo's two officers (王科员 prepares, 李科长 approves) as staff accounts: name -> (account id,
    password). A data directory used before keeps its accounts; they get fresh passwords."""
    from policy_push.staff import Role, StaffDirectory

    out = {}
    async with runtime.sessions() as session, session.begin():
        directory = StaffDirectory(session)
        for name, role in ((PREPARER, Role.EDITOR), (APPROVER, Role.APPROVER)):
            existing = await directory.by_name(name)
            if existing is None:
                row, password = await directory.add(name, role, actor="demo")
                out[name] = (row.id, password)
            else:
                out[name] = (existing.id, await directory.reset_password(name, actor="demo"))
    return out


async def _prepare_and_approve(runtime: Any, matcher: Any, clock: Any, staff: dict[str, tuple[str, str]]) -> list[str]:
    from policy_push.campaigns import approve, campaign_preview_text, prepare_campaign, schedule
    from policy_push.storage import PolicyRepository

    preparer, approver = staff[PREPARER][0], staff[APPROVER][0]

    today = clock.now().astimezone(ZoneInfo(runtime.settings.local_timezone)).date()
    async with runtime.sessions() as session:
        repo = PolicyRepository(session)
        stored, _ = await repo.list(status="open", today=today, limit=500)
        total = await repo.count()
    ids = []
    for item in stored:
        prepared = await prepare_campaign(
            runtime.sessions, matcher, item.policy.id, prepared_by=preparer, settings=runtime.settings, on=today
        )
        if prepared is not None:
            ids.append((item.policy.id, prepared.id))
    print(f"\n{len(ids)} open policies matched and drafted by {PREPARER} ({len(stored)} open, "
          f"{total - len(stored)} closed on {today} never pushed).")
    preview_id = next((cid for pid, cid in ids if pid == PREVIEW_POLICY), ids[0][1])
    async with runtime.sessions() as session:
        print("\n" + await campaign_preview_text(session, runtime.cipher, preview_id, top_n=5))
    # the policies closing soonest go out first: their recipients take the week's first slots
    # under the frequency cap, and the one closing on 15 December gets its deadline reminder
    deadline = {item.policy.id: item.policy.apply_until or dt.date.max for item in stored}
    ordered = sorted(ids, key=lambda pc: (deadline[pc[0]], pc[0]))
    for i, (_pid, cid) in enumerate(ordered):
        async with runtime.sessions() as session, session.begin():
            await approve(session, cid, approver=approver, now=clock.now())
            await schedule(session, cid, actor=approver, send_at=clock.now() + dt.timedelta(seconds=i + 1), now=clock.now())
    print(f"\n{APPROVER} (a second officer) approved and scheduled all {len(ids)} campaigns at "
          f"{clock.now().astimezone(DEMO_START.tzinfo):%H:%M} (SHA-256 of each recipient list and text recorded).")
    return [cid for _pid, cid in ids]


async def _people_say_stop(sims: SimulatorSet, sessions: Any, cipher: Any) -> None:
    """One person who got an SMS replies TD, one who got a WeChat message unfollows: the simulators push
    both to the service's callbacks, which record them as opt-outs (their next campaigns skip them)."""
    from policy_push.storage import inbound as inbound_store

    if sims.aliyun.records:
        sims.aliyun.reply(sims.aliyun.records[0].recipient, "TD")
    if sims.wechat.records:
        sims.wechat.follow_event(sims.wechat.records[0].recipient, "unsubscribe")
    await sims.aliyun.pusher.drain()
    await sims.wechat.pusher.drain()
    async with sessions() as session:
        items, _ = await inbound_store.listed(session, cipher)
    print("\nreplies and unfollows (pushed by the simulators to the callbacks):")
    for m in reversed(items):
        said = f'replied "{m["text"]}"' if m["channel"] == "sms" else "unfollowed the account"
        print(f"  {m['sender']} {said}: opted out of {m['channel']} ({m['profiles']} profile(s))")


async def _start_web(settings: Settings, pipeline: Any) -> web.AppRunner:
    from policy_push.web import create_app
    from policy_push.web.keys import pipeline_key

    app = create_app(settings, worker=False)
    # receipts arriving at the callback endpoints use the demo's pipeline and its simulated clock
    app[pipeline_key] = pipeline
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    return runner


async def run_demo(settings: Settings, *, serve_after: bool) -> int:
    from policy_push.matching.service import MatchService
    from policy_push.runtime import open_runtime
    from policy_push.sending import open_pipeline
    from policy_push.sending.providers import callback_urls, wechat_callback_token, with_run_secrets
    from scheduler import FrozenClock, ScaledClock

    started = time.perf_counter()
    base = f"http://{settings.host}:{settings.port}"
    # this run's callback secrets (random), shared by the service and the simulators it starts
    settings = with_run_secrets(settings)
    sims: SimulatorSet = await start_all(
        callback_urls=callback_urls(settings, base),
        wechat_token=wechat_callback_token(settings),
        # the simulators' factor multiplies the providers' real waits (receipt delays, callback
        # retry schedules): a hundredth keeps receipts quick without outrunning our own records
        time_factor=0.01,
        faults=DEMO_FAULTS,
    )
    settings = settings.model_copy(
        update={
            "aliyun_sms_url": sims.urls["aliyun"] + "/",
            "tencent_sms_url": sims.urls["tencent"] + "/",
            "wechat_url": sims.urls["wechat"],
            "jpush_url": sims.urls["jpush"],
        }
    )
    runner: web.AppRunner | None = None
    try:
        print("provider simulators (test mode) on loopback: " + ", ".join(f"{k} {v}" for k, v in sims.urls.items()))
        print(f"importing the Panjin sample ({sample_counts()}):")
        await prepare(settings, quiet=True)
        async with open_runtime(settings) as runtime:
            matcher = MatchService.for_runtime(runtime)
            await matcher.start()
            try:
                # drafting and approval happen at 20:45 sharp; the clock starts running with dispatch
                staff = await officers(runtime)
                print(f"\nstaff accounts (log in at {base}/staff/login while the demo serves):")
                for name, (_id, password) in staff.items():
                    print(f"  {name} ({'prepares' if name == PREPARER else 'approves'})  password: {password}")
                await _prepare_and_approve(runtime, matcher, FrozenClock(DEMO_START), staff)
                clock = ScaledClock(TIME_FACTOR, start=DEMO_START + dt.timedelta(minutes=5))
                async with open_pipeline(runtime, clock=clock) as pipeline:
                    runner = await _start_web(settings, pipeline)
                    quiet = settings.quiet_hours.replace("-", "–") or "none"
                    print(f"\ndispatching (simulated clock, {TIME_FACTOR / 3600:g} hour(s) per second; quiet hours {quiet}):")
                    await _dispatch(pipeline, runtime.sessions, clock)
                    await asyncio.sleep(0.5)  # the last receipts
                    await _people_say_stop(sims, runtime.sessions, runtime.cipher)
                    print("\nfunnel:")
                    for line in (await funnel(runtime.sessions, runtime.settings)).lines():
                        print("  " + line)
                    print("\nprovider records: " + ", ".join(f"{k} {len(v)}" for k, v in sims.records.items()))
                    print(f"demo run took {time.perf_counter() - started:.1f} s")
            finally:
                await matcher.close()
        if runner is not None:
            await runner.cleanup()
            runner = None
        if not serve_after:
            return 0
        # from here on the service runs as `serve` does: real time, the ticks in process
        from policy_push.web import create_app

        app = create_app(settings.model_copy(update={"time_factor": 1.0}), worker=True)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, settings.host, settings.port).start()
        print(f"\npolicy_push API on {base}/api/v1 (OpenAPI {base}/api/v1/openapi.json), token {DEMO_TOKEN!r}")
        print(f"  curl -H 'Authorization: Bearer {DEMO_TOKEN}' {base}/api/v1/campaigns")
        print(f"staff console: {base}/staff/login")
        for name, (_id, password) in staff.items():
            print(f"  {name} ({'prepares' if name == PREPARER else 'approves'})  password: {password}")
        print(f"  curl -H 'Authorization: Bearer {DEMO_TOKEN}' {base}/api/v1/policies/{PREVIEW_POLICY}/matches")
        print("Press Ctrl+C to stop.")
        while True:
            await asyncio.sleep(3600)
    finally:
        if runner is not None:
            await runner.cleanup()
        await sims.close()


async def _dispatch(pipeline: Any, sessions: Any, clock: Any) -> None:
    """Run the ticks' bodies until the morning's sending is done, printing a line per simulated hour."""
    tz = DEMO_START.tzinfo
    last_hour = None
    while clock.now() < DEMO_LIMIT:
        if clock.now() >= DEMO_END and not await _due(sessions, clock.now()):
            break
        await pipeline.dispatch_due_campaigns()
        # short rounds, so the other ticks (receipts settling, reminders) get their turns
        await pipeline.dispatcher.send_due(budget_s=0.5)
        await pipeline.settle_lapsed()
        await pipeline.close_expired_policies()
        reminders = await pipeline.deadline_reminders()
        await pipeline.dispatcher.finish()
        now = clock.now().astimezone(tz)
        if reminders:
            print(f"  {now:%m-%d %H:%M}  deadline reminder campaign(s) started for policies closing soon")
        if now.hour != last_hour:
            last_hour = now.hour
            async with sessions() as s:
                counts: dict[str, int] = {}
                for (_, status), n in (await delivery_history.counts(s)).items():
                    counts[status] = counts.get(status, 0) + n
                waiting = await delivery_history.not_due(s, now=clock.now())
            done = sum(counts.get(st, 0) for st in DELIVERY_REACHED)
            quiet = "  (quiet hours)" if pipeline.rules.windows.default and pipeline.rules.windows.default.is_quiet(now) else ""
            print(f"  {now:%m-%d %H:%M}  sent {done:>5}  delivered {counts.get(DeliveryStatus.DELIVERED, 0):>5}  "
                  f"waiting {waiting:>5}{quiet}")
        await asyncio.sleep(0.05)


async def _due(sessions: Any, now: dt.datetime) -> int:
    """Rows that could go out now or are going out: created and due, or sending."""
    async with sessions() as s:
        counts: dict[str, int] = {}
        for (_, status), n in (await delivery_history.counts(s)).items():
            counts[status] = counts.get(status, 0) + n
        later = await delivery_history.not_due(s, now=now)
    return counts.get(DeliveryStatus.CREATED, 0) - later + counts.get(DeliveryStatus.SENDING, 0)


def _demo(args: argparse.Namespace) -> int:
    """``policy-push demo``

    Imports the sample, matches, drafts, approves (two officers) and sends through the simulators on a clock
    that runs an hour a second, then keeps serving the API. Its temporary data directory is removed at the end
    unless --data-dir is given.

    Example::

      policy-push demo --exit
      policy-push demo --port 8081 --data-dir demo-data
    """
    if args.port == 0:  # any free port, as for serve; the simulators are told the real one
        with bind_listener("127.0.0.1", 0) as sock:
            args.port = sock.getsockname()[1]
    check_port_free("127.0.0.1", args.port)  # before ten seconds of work, not after
    if args.data_dir is not None and (args.data_dir / "policy_push.db").exists():
        # a second run would find the first run's campaigns already approved and sent: the story needs a clean start
        raise CommandFailed(
            Exit.FILES,
            f"--data-dir {args.data_dir} already holds an earlier demo's database; give a new folder, or remove "
            f"{args.data_dir / 'policy_push.db'} to start again",
        )
    temporary = args.data_dir is None
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="policy_push_demo_"))
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _run(args, data_dir)
    finally:
        if temporary:  # the demo's own folder goes; a --data-dir is the user's to keep
            shutil.rmtree(data_dir, ignore_errors=True)


def _run(args: argparse.Namespace, data_dir: Path) -> int:
    settings = Settings(
        demo=True,
        data_dir=data_dir,
        port=args.port,
        api_token=DEMO_TOKEN,
        database_url="",
        public_base_url=f"http://127.0.0.1:{args.port}",
        # a reminder 20 days ahead makes the sample's policy closing on 15 December due at once
        reminder_days_before=20,
        # JPush's paid tier: each app message carries its recipient's own reason, so one push each
        app_rate_per_s=200.0,
        # Aliyun SendSms, one request per message for the same reason (the simulator's own limits hold)
        sms_rate_per_s=1000.0,
        dispatch_batch_size=100,
        # the demo serves plain HTTP on loopback: the staff cookie must travel without TLS here
        staff_cookie_secure=False,
    )
    configure_logging(settings)
    if "POLICY_PUSH_LOG_LEVEL" not in os.environ:
        # the demo prints its own story; the service's INFO lines would drown it (unless asked for)
        logging.getLogger("policy_push").setLevel(logging.WARNING)
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    print(f"policy_push demo — data in {data_dir}")
    try:
        return asyncio.run(run_demo(settings, serve_after=not args.exit))
    except KeyboardInterrupt:
        return 0
