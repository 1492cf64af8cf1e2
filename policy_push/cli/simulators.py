"""``policy-push simulators``: the local provider simulators (Aliyun and Tencent SMS, WeChat,
JPush) on loopback, printing each message as it arrives; ``policy-push simulators reply|event|scenario``
drive running ones (a phone replies TD, a user unfollows, a recipient's fate is scripted)."""

from __future__ import annotations

import argparse

from channels.simulators import run_simulators


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "simulators",
        help="start the SMS, WeChat and JPush provider simulators on loopback (or: simulators reply|event|scenario …); "
        "example: policy-push simulators --config docs/examples/simulators.toml",
        add_help=False,
    )
    p.add_argument("args", nargs=argparse.REMAINDER, help="options of the simulators (--help lists them)")
    p.set_defaults(handler=_simulators)


def run(argv: list[str]) -> int:
    return run_simulators(argv)


def _simulators(args: argparse.Namespace) -> int:
    return run(args.args)
