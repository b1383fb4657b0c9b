"""Beyond one machine, for real: three replicas behind HAProxy sharing a Redis, and job workers.

Everything runs on loopback: Debian's redis-server with deploy/redis.conf, Debian's haproxy
with deploy/haproxy.cfg, our servers and workers as subprocesses. In order:

1. an ``audio_url`` made by one replica is served by every replica and through the balancer;
2. a phrase synthesized once is a cache hit on the other replicas;
3. mixed Wyoming and HTTP load through HAProxy reaches every replica, and nothing fails;
4. 200 queued jobs are drained by two workers, one killed halfway: every job completes, once;
5. a replica killed mid-load fails only requests it was serving; new requests succeed;
6. a replica stopped with SIGTERM (--drain-seconds) mid-load loses no request;
7. Redis stopped mid-load fails no request; sharing resumes when it is back.

The figures (failures, hit rate, jobs per minute per worker) go to test-artifacts/scale.json.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import socket
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
from rq import Queue
from rq.serializers import JSONSerializer
from rq.suspension import resume, suspend

from conftest import ARTIFACTS, exchange
from scale_cluster import (
    HAProxy, Outcome, RedisServer, Replica, Worker, announcements, http_say, mixed_load, start_haproxy, start_redis,
    start_replicas, start_worker, wait_for_workers, wyoming_say,
)
from wyoming.tts import Synthesize

JOBS = 200
FIGURES: dict[str, Any] = {}


@dataclass
class Cluster:
    folder: Path
    redis: RedisServer
    replicas: list[Replica]
    haproxy: HAProxy
    workers: list[Worker] = field(default_factory=list)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis.url)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("scale")
    redis_server = start_redis(folder)
    suspend(redis.Redis.from_url(redis_server.url))  # workers start now (voices load) but take no job yet
    workers = [start_worker(folder, redis_server.url) for _ in range(2)]
    replicas: list[Replica] = []
    haproxy = None
    try:
        replicas = start_replicas(folder, 3, redis_server.url, "--max-jobs-queued", str(JOBS), "--drain-seconds", "20")
        haproxy = start_haproxy(folder, [(r.wyoming_port, r.http_port) for r in replicas])
        haproxy.wait_until({"r0": "UP", "r1": "UP", "r2": "UP"})
        wait_for_workers(workers)
        yield Cluster(folder, redis_server, replicas, haproxy, workers)
    finally:
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.kill()
        for replica in replicas:
            if replica.server.process.poll() is None:
                replica.server.process.kill()
        if haproxy is not None:
            haproxy.stop()
        redis_server.stop()
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "scale.json").write_text(json.dumps(FIGURES, indent=2))


async def _health(session: aiohttp.ClientSession, port: int) -> dict[str, Any]:
    async with session.get(f"http://127.0.0.1:{port}/health") as response:
        return await response.json()


async def _metric(session: aiohttp.ClientSession, port: int, name: str) -> float:
    async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics:\n{text}")


def _settle_redis_writes(client: redis.Redis, pattern: str, timeout: float = 10.0) -> int:
    """Cache writes reach Redis just after the audio was sent: wait until their count is still."""
    deadline = time.monotonic() + timeout
    last, still_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = sum(1 for _ in client.scan_iter(pattern))
        if count != last:
            last, still_since = count, time.monotonic()
        elif time.monotonic() - still_since > 0.5:
            break
        time.sleep(0.05)
    return last


async def test_audio_url_made_by_one_replica_is_served_by_every_replica(cluster: Cluster) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"http://127.0.0.1:{cluster.replicas[0].http_port}/api/tts/synthesize",
                                json={"text": "快递已经放在门口了。", "format": "wav"}) as response:
            assert response.status == 200, await response.text()
            url = (await response.json())["audio_url"]
        bodies = []
        for port in [r.http_port for r in cluster.replicas] + [cluster.haproxy.http_port] * 3:
            async with session.get(f"http://127.0.0.1:{port}{url}") as response:
                assert response.status == 200, (port, await response.text())
                assert response.headers["Content-Type"] == "audio/wav"
                bodies.append(await response.read())
    assert bodies[0][:4] == b"RIFF" and len(bodies[0]) > 24000
    assert all(body == bodies[0] for body in bodies)


async def test_a_phrase_synthesized_once_is_a_cache_hit_on_the_other_replicas(cluster: Cluster) -> None:
    phrases = ["洗衣机的衣服已经洗好了。", "The front door is open.", "扫地机器人已经回到充电座了。"]
    first, others = cluster.replicas[0], cluster.replicas[1:]
    client = cluster.client()
    originals = []
    for phrase in phrases:
        received = await exchange(first.wyoming_port, Synthesize(text=phrase).event())
        assert received.types[-1] == "audio-stop"
        originals.append(received.audio)
    assert _settle_redis_writes(client, "indextts:cache:*") >= len(phrases)
    async with aiohttp.ClientSession() as session:
        before = [(await _health(session, r.http_port))["cache"] for r in others]
        for replica in others:
            for phrase, original in zip(phrases, originals):
                received = await exchange(replica.wyoming_port, Synthesize(text=phrase).event())
                assert received.types[-1] == "audio-stop"
                # The same 16-bit samples the first replica sent, not a new synthesis.
                assert received.audio.tobytes() == original.tobytes()
        after = [(await _health(session, r.http_port))["cache"] for r in others]
        shared_hits = sum(a["shared_hits"] - b["shared_hits"] for a, b in zip(after, before))
        lookups = sum((a["hits"] + a["misses"]) - (b["hits"] + b["misses"]) for a, b in zip(after, before))
        misses = sum(a["misses"] - b["misses"] for a, b in zip(after, before))
        assert misses == 0 and shared_hits == lookups > 0, (before, after)
        assert await _metric(session, others[0].http_port, "indextts_cache_shared_hits_total") > 0
    FIGURES["cross_replica_cache"] = {"phrases": len(phrases), "replicas_asked": len(others), "sentence_lookups": lookups,
                                      "shared_hits": shared_hits, "hit_rate": shared_hits / lookups}


async def test_mixed_load_through_haproxy_reaches_every_replica(cluster: Cluster) -> None:
    async with aiohttp.ClientSession() as session:
        before = [(await _health(session, r.http_port))["cache"] for r in cluster.replicas]
        texts = announcements(24, seed=1)
        outcomes = await mixed_load(cluster.haproxy.wyoming_port, cluster.haproxy.http_port, texts, concurrency=6)
        failed = [o for o in outcomes if not o.ok]
        assert not failed, failed
        after = [(await _health(session, r.http_port))["cache"] for r in cluster.replicas]
    # Every replica did part of the work (cache lookups count every sentence it was asked for).
    lookups = [(a["hits"] + a["misses"]) - (b["hits"] + b["misses"]) for a, b in zip(after, before)]
    assert all(n > 0 for n in lookups), lookups
    FIGURES["mixed_load"] = {"requests": len(outcomes), "failed": 0, "sentence_lookups_per_replica": lookups}


async def test_queued_jobs_are_drained_by_two_workers_with_one_killed(cluster: Cluster) -> None:
    client = cluster.client()
    queue = Queue("indextts", connection=client, serializer=JSONSerializer)
    balancer = cluster.haproxy.http_port
    texts = [f"{k + 1}号柜。" for k in range(JOBS)]  # short: the queue is under test, not the voice
    semaphore = asyncio.Semaphore(10)
    async with aiohttp.ClientSession() as session:

        async def submit(text: str) -> str:
            async with semaphore, session.post(f"http://127.0.0.1:{balancer}/api/tts/jobs", json={"text": text}) as response:
                assert response.status == 202, await response.text()
                return (await response.json())["id"]

        ids = await asyncio.gather(*(submit(text) for text in texts))
        assert len(set(ids)) == JOBS
        # Past --max-jobs-queued: refused at once, with a hint of when to come back.
        async with session.post(f"http://127.0.0.1:{balancer}/api/tts/jobs", json={"text": "多一个。"}) as response:
            assert response.status == 503
            assert (await response.json())["code"] == "queue-full"
            assert int(response.headers["Retry-After"]) >= 1
        health = await _health(session, cluster.replicas[0].http_port)
        assert health["jobs"]["queued"] == JOBS and health["jobs"]["oldest_queued_age"] > 0, health
        assert await _metric(session, cluster.replicas[0].http_port, "indextts_jobs_queued") == JOBS

        started = time.monotonic()
        resume(client)
        victim = cluster.workers[0]
        victim_name = f"{socket.gethostname()}.{victim.process.pid}"
        in_hand = None
        while int(client.get("indextts:jobs:finished") or 0) < JOBS // 2:
            assert time.monotonic() - started < 180, "workers too slow"
            await asyncio.sleep(0.05)
        while in_hand is None:  # kill it while it holds a job
            # Frozen, it cannot finish the job between our look and the kill (a short job can).
            victim.process.send_signal(signal.SIGSTOP)
            for job_id in queue.started_job_registry.get_job_ids():
                worker, state = client.hmget(f"indextts:job:{job_id}", "worker", "state")
                if (worker or b"").decode() == victim_name and state == b"started":
                    in_hand = job_id
                    break
            if in_hand is None:
                victim.process.send_signal(signal.SIGCONT)
                await asyncio.sleep(0.005)
        victim.process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        finished_at_kill = int(client.get("indextts:jobs:finished") or 0)

        while int(client.get("indextts:jobs:finished") or 0) < JOBS:
            assert time.monotonic() - started < 240, f"{client.get('indextts:jobs:finished')} of {JOBS} jobs finished"
            await asyncio.sleep(0.1)
        drained = time.monotonic() - started
        await asyncio.sleep(1.0)  # a late duplicate run would show now
        statuses = await asyncio.gather(*(_job(session, balancer, job_id) for job_id in ids))
        # A sample of the audio, fetched through the balancer from whichever replica.
        for status in statuses[:: JOBS // 10]:
            async with session.get(f"http://127.0.0.1:{balancer}{status['audio_url']}") as response:
                assert response.status == 200 and (await response.read())[:4] == b"RIFF"

    assert all(s["state"] == "finished" and s["progress"] == 1.0 for s in statuses), [s for s in statuses if s["state"] != "finished"]
    assert int(client.get("indextts:jobs:finished")) == JOBS  # published exactly once each
    urls = [s["audio_url"] for s in statuses]
    assert len(set(urls)) == JOBS
    assert all(client.exists(f"indextts:audio:{url.rsplit('/', 1)[1]}") for url in urls)
    assert queue.failed_job_registry.count == 0
    lost = next(s for s in statuses if s["id"] == in_hand)
    assert lost["attempt"] == 2, lost  # its worker died under it: run again by the other worker
    survivor_log = cluster.workers[1].log
    duplicates = survivor_log.count("already finished by another run")
    runs: dict[str, list[tuple[float, float]]] = {}
    for status in statuses:
        name = (client.hget(f"indextts:job:{status['id']}", "worker") or b"").decode()
        runs.setdefault(name, []).append((status["started_at"], status["finished_at"]))
    rates = {  # jobs a worker finished per minute while it was taking them
        name: round(len(spans) / max(1e-6, max(e for _, e in spans) - min(s for s, _ in spans)) * 60, 1) for name, spans in runs.items()
    }
    FIGURES["jobs"] = {
        "jobs": JOBS, "drained_seconds": round(drained, 1), "finished_when_killed": finished_at_kill,
        "killed_after_seconds": round(killed_at - started, 1), "finished_per_worker": {n: len(s) for n, s in runs.items()},
        "jobs_per_minute_per_worker": rates, "killed_worker": victim_name,
        "killed_workers_job": in_hand, "retried_jobs": [s["id"] for s in statuses if s["attempt"] > 1],
        "duplicate_runs_discarded": duplicates,
    }


async def _job(session: aiohttp.ClientSession, port: int, job_id: str) -> dict[str, Any]:
    async with session.get(f"http://127.0.0.1:{port}/api/tts/jobs/{job_id}") as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def _load_with_event(cluster: Cluster, texts: list[str], after: int, event: Any, concurrency: int = 6) -> tuple[list[Outcome], float, int]:
    """Run the load; when ``after`` requests are done, call ``event()``; returns the outcomes,
    the time ``event()`` returned and how many requests were in flight at that moment."""
    progress: asyncio.Queue[Outcome] = asyncio.Queue()
    load = asyncio.create_task(mixed_load(cluster.haproxy.wyoming_port, cluster.haproxy.http_port, texts, concurrency, progress))
    for _ in range(after):
        await progress.get()
    event()
    event_time = time.monotonic()
    outcomes = await load
    in_flight = sum(1 for o in outcomes if o.started < event_time < o.ended)
    return outcomes, event_time, in_flight


async def test_a_replica_killed_mid_load_fails_only_requests_it_was_serving(cluster: Cluster) -> None:
    victim = cluster.replicas[2]

    def kill() -> None:
        # Until the kernel has torn the process down (tens of ms) its port still completes
        # handshakes: "killed" is when it is gone, not when the signal left.
        victim.server.process.send_signal(signal.SIGKILL)
        victim.server.process.wait(10)

    outcomes, killed_at, in_flight = await _load_with_event(cluster, announcements(36, seed=2), after=10, event=kill)
    failed = [o for o in outcomes if not o.ok]
    # Only requests that were in progress when it died can have failed (those on the victim).
    assert all(o.started < killed_at for o in failed), (killed_at, failed)
    assert len(failed) <= in_flight
    started_after = [o for o in outcomes if o.started > killed_at]
    assert started_after and all(o.ok for o in started_after)
    await asyncio.to_thread(cluster.haproxy.wait_until, {"r2": "DOWN"})
    again = await mixed_load(cluster.haproxy.wyoming_port, cluster.haproxy.http_port, announcements(12, seed=3), concurrency=4)
    assert all(o.ok for o in again), [o for o in again if not o.ok]
    FIGURES["replica_killed"] = {
        "requests": len(outcomes), "in_flight_at_kill": in_flight, "failed": len(failed),
        "failed_kinds": Counter(o.kind for o in failed), "started_after_kill": len(started_after), "after_marked_down": len(again),
    }


async def test_a_replica_draining_on_sigterm_loses_no_request(cluster: Cluster) -> None:
    leaving = cluster.replicas[1]
    outcomes, stopped_at, in_flight = await _load_with_event(
        cluster, announcements(30, seed=4), after=8, event=lambda: leaving.server.process.send_signal(signal.SIGTERM)
    )
    failed = [o for o in outcomes if not o.ok]
    assert not failed, failed
    code = await asyncio.to_thread(leaving.server.process.wait, 30)
    assert code == 0, leaving.server.log
    assert "Draining" in leaving.server.log and "Traceback" not in leaving.server.log
    await asyncio.to_thread(cluster.haproxy.wait_until, {"r1": "DOWN"})
    FIGURES["replica_drained"] = {"requests": len(outcomes), "in_flight_at_sigterm": in_flight, "failed": 0,
                                  "exit_seconds": round(time.monotonic() - stopped_at, 1)}


async def test_redis_stopped_mid_load_fails_no_request(cluster: Cluster) -> None:
    survivor = cluster.replicas[0]
    outcomes, stopped_at, in_flight = await _load_with_event(
        cluster, announcements(24, seed=5), after=8, event=lambda: cluster.redis.stop(signal.SIGKILL), concurrency=4
    )
    failed = [o for o in outcomes if not o.ok]
    assert not failed, failed
    async with aiohttp.ClientSession() as session:
        health = await _health(session, survivor.http_port)
        assert health["redis"]["up"] is False and health["redis"]["errors"] > 0, health
        assert await _metric(session, survivor.http_port, "indextts_redis_up") == 0
        # Made while Redis is away: kept on the replica's own disk, still served.
        result = await http_say(session, survivor.http_port, "停电期间的测试。")
        assert result.ok, result
        async with session.post(f"http://127.0.0.1:{survivor.http_port}/api/tts/synthesize", json={"text": "本地文件。"}) as response:
            url = (await response.json())["audio_url"]
        async with session.get(f"http://127.0.0.1:{survivor.http_port}{url}") as response:
            assert response.status == 200
        # Jobs cannot be queued without Redis: refused plainly, not hung.
        async with session.post(f"http://127.0.0.1:{survivor.http_port}/api/tts/jobs", json={"text": "排队。"}) as response:
            assert response.status == 503 and (await response.json())["code"] == "redis-unavailable"

        cluster.redis.start()  # same port, empty
        deadline = time.monotonic() + 20
        client = cluster.client()
        for k in itertools.count():  # the replica tries Redis again a few seconds after the failure
            assert (await wyoming_say(survivor.wyoming_port, f"恢复以后的第{k + 1}句。")).ok
            if _settle_redis_writes(client, "indextts:cache:*", timeout=1.0) > 0:
                break  # new phrases reach the shared cache again
            assert time.monotonic() < deadline, "sharing did not resume"
        assert (await _health(session, survivor.http_port))["redis"]["up"]
        # The worker that lived through the outage takes jobs again (its voices still loaded).
        async with session.post(f"http://127.0.0.1:{survivor.http_port}/api/tts/jobs", json={"text": "恢复以后的任务。"}) as response:
            assert response.status == 202
            job_id = (await response.json())["id"]
        while (await _job(session, survivor.http_port, job_id))["state"] != "finished":
            assert time.monotonic() < deadline + 40, cluster.workers[1].log[-3000:]
            await asyncio.sleep(0.2)
        assert cluster.workers[1].process.poll() is None
    FIGURES["redis_stopped"] = {"requests": len(outcomes), "in_flight_at_stop": in_flight, "failed": 0,
                                "redis_errors_counted": health["redis"]["errors"]}
