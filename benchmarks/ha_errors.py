"""How long a real Home Assistant takes to answer each error case, end to end.

    python benchmarks/ha_errors.py                     # this checkout's server
    python benchmarks/ha_errors.py --server-repo DIR   # another checkout's (e.g. an old commit in a worktree)

Uses the test suite's Home Assistant harness (tests/home_assistant.py: the cached real core,
onboarded and given the Wyoming integration through its REST API). Every case goes through
``/api/tts_get_url`` and a GET of the audio URL, all at once in threads, with the server's
default ``--idle-timeout`` (120 s). Prints the HTTP status and seconds per case, and the median
over ``--repeat`` rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import home_assistant  # noqa: E402

CASES = [
    ("chinese", "客厅温度23.5°C，湿度60%。", "zh_CN", None),
    ("english", "The garage door has been open for 15 minutes.", "en_US", {"voice": "en_US-joe-medium"}),
    ("spaces only", "     ", "zh_CN", None),
    ("unknown voice", "你好。", "zh_CN", {"voice": "no-such-voice"}),
    ("6,000 characters", "好" * 6000, "zh_CN", None),
    ("punctuation only", "。。。", "zh_CN", None),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server-repo", type=Path, default=HERE.parent, help="checkout whose server is measured")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    # The server of --server-repo, started the way the tests start it (cwd = that checkout).
    import conftest

    conftest.REPO = args.server_repo.resolve()
    tmp = Path(tempfile.mkdtemp(prefix="ha-errors-"))
    server = conftest.start_server(tmp)
    ha = home_assistant.start(home_assistant.ensure_installed(), tmp / "ha", conftest.free_port())
    try:
        ha.onboard()
        entity = ha.add_wyoming(server.port)
        rounds: dict[str, list[tuple[int, float]]] = {name: [] for name, *_ in CASES}
        for _ in range(args.repeat):
            ha.clear_tts_cache()  # once per round: clearing drops requests in flight
            threads = []
            for name, message, language, options in CASES:

                def run(name: str = name, message: str = message, language: str = language, options: dict[str, str] | None = options) -> None:
                    spoken = ha.speak(entity, message, language, options, timeout=300, clear_cache=False)
                    rounds[name].append((spoken.status, spoken.seconds))

                threads.append(threading.Thread(target=run))
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        print(f"server: {args.server_repo}  (Home Assistant {home_assistant.release()}, {args.repeat} rounds, cases at once)")
        print(f"{'case':<18} {'HTTP status':<14} {'median s':>9}  all")
        for name, *_ in CASES:
            statuses = sorted({status for status, _ in rounds[name]})
            seconds = [s for _, s in rounds[name]]
            print(f"{name:<18} {','.join(map(str, statuses)):<14} {statistics.median(seconds):>9.2f}  {[round(s, 2) for s in seconds]}")
    finally:
        home_assistant.stop(ha)
        conftest.stop_server(server)


if __name__ == "__main__":
    main()
