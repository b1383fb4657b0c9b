"""Container health check: a real ``describe`` round trip.

    python -m wyoming_indextts.healthcheck [--uri tcp://127.0.0.1:10200] [--timeout 3]

Exits 0 when the server answers with ``info`` listing at least one voice, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from urllib.parse import urlparse

from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info


async def check(host: str, port: int, timeout: float) -> bool:
    client = AsyncTcpClient(host, port)
    try:
        async with asyncio.timeout(timeout):
            await client.connect()
            await client.write_event(Describe().event())
            while (event := await client.read_event()) is not None:
                if Info.is_type(event.type):
                    info = Info.from_event(event)
                    return bool(info.tts and info.tts[0].voices)
    except (OSError, asyncio.TimeoutError):
        return False
    finally:
        await client.disconnect()
    return False


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m wyoming_indextts.healthcheck", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uri", default="tcp://127.0.0.1:10200", help="the server to ask (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=3.0, metavar="SECONDS", help="give up after this long (default: %(default)s)")
    args = parser.parse_args()
    parsed = urlparse(args.uri)
    healthy = asyncio.run(check(parsed.hostname or "127.0.0.1", parsed.port or 10200, args.timeout))
    sys.exit(0 if healthy else 1)


if __name__ == "__main__":
    main()
