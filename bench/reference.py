"""The bare reference client: an aiohttp loop under a semaphore that does nothing but send.

    .venv/bin/python -m bench.reference --base-url http://127.0.0.1:8787/v1 \
        --concurrency 128 --requests 20000 [--stream]

It sends the same request bodies the runner sends (same shape and size, one distinct row id
per request, so the simulator does the same work), reads each response body whole and
throws it away. It prints one JSON line: requests, seconds, requests per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import aiohttp

INVOKE_PATH = "/prompt/invoke"


def body(i: int, *, stream: bool, variant: str = "baseline") -> bytes:
    """An invoke body like the runner's for row ``i`` (see runner.run._pipeline.request_body)."""
    return json.dumps(
        {
            "deployment": "bench",
            "variant": variant,
            "inputs": {"text": f"ticket {i}: my invoice was charged twice, please refund"},
            "streaming": stream,
            "metadata": {"run_id": "reference", "row_id": str(i), "variant": variant, "repeat": 0},
        },
        separators=(",", ":"),
    ).encode()


async def send_all(base_url: str, concurrency: int, requests: int, stream: bool) -> float:
    """Send ``requests`` requests, ``concurrency`` at a time; return the seconds it took."""
    url = base_url.rstrip("/") + INVOKE_PATH
    headers = {"Authorization": "Bearer fhk_reference", "Content-Type": "application/json"}
    semaphore = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    failures = 0

    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one(i: int) -> None:
            nonlocal failures
            try:
                async with session.post(url, data=body(i, stream=stream)) as response:
                    await response.read()
                    if response.status != 200:
                        failures += 1
            finally:
                semaphore.release()

        # The classic loop: take a slot, start a task, never more than ``concurrency`` at once.
        started = time.perf_counter()
        tasks: set[asyncio.Task[None]] = set()
        for i in range(requests):
            await semaphore.acquire()
            task = asyncio.create_task(one(i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    if failures:
        print(f"reference: {failures} requests failed", file=sys.stderr)
    return elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args(argv)
    seconds = asyncio.run(send_all(args.base_url, args.concurrency, args.requests, args.stream))
    print(
        json.dumps({"requests": args.requests, "seconds": seconds, "rps": args.requests / seconds})
    )


if __name__ == "__main__":
    main()
