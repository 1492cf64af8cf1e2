"""The import's line cutter: numbering, blank lines, CRLF, chunk boundaries, bounded memory."""

import asyncio
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from policy_push.importing import RawLine, split_lines


def cut(chunks: list[bytes], limit: int = 100) -> list[RawLine]:
    async def run() -> list[RawLine]:
        return [line async for line in split_lines(chunks, limit)]

    return asyncio.run(run())


def test_numbers_survive_blank_and_long_lines() -> None:
    data = b'{"a":1}\n\n' + b"x" * 500 + b'\r\n{"b":2}'
    lines = cut([data[i : i + 7] for i in range(0, len(data), 7)], limit=100)
    assert [(x.number, x.data) for x in lines] == [(1, b'{"a":1}'), (3, None), (4, b'{"b":2}')]
    assert lines[1].size >= 500


def test_async_chunks_are_accepted() -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        yield b"a\nb"
        yield b"c\n"

    async def run() -> list[bytes | None]:
        return [x.data async for x in split_lines(chunks(), 10)]

    assert asyncio.run(run()) == [b"a", b"bc"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=20), st.integers(1, 50), st.randoms())
def test_any_chunking_gives_the_same_lines(lines: list[bytes], limit: int, rnd: random.Random) -> None:
    data = b"\n".join(lines)
    cuts = sorted(rnd.sample(range(len(data) + 1), k=min(5, len(data) + 1)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    expected = [
        (i, line.rstrip(b"\r") if len(line) <= limit else None)
        for i, line in enumerate(lines, 1)
        if line.strip() or len(line) > limit
    ]
    assert [(x.number, x.data) for x in cut(chunks, limit)] == expected
