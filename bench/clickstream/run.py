"""Clickstream benchmarks; prints one JSON document.

    PYTHONPATH=services:. python bench/clickstream/run.py [--seconds 15]

Starts its own Postgres, Redis and Kafka from the test bed's provisioned artifacts
(`make testbed`), runs every process for real, and loads it from this machine with
Debian's `wrk`. Each figure is measured next to a reference in the same run, so the
numbers say where the time goes:

- Event API single-event requests/s, next to `/health` on the same server (no Kafka,
  no JSON, no write key): the cost of HTTP + gunicorn + Flask alone.
- Event API batched events/s (100-event batches).
- Router events/s, wall and per CPU-second of the router process, next to a
  passthrough copy (no parsing, routing or transactions).
- End-to-end latency from when a request was due to the webhook receiver, at a fixed
  1,000 events/s (open loop), as single-event requests and as 10-event batches, next
  to the latency of the Event API's acknowledgement alone.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from statistics import quantiles
from typing import Any

import requests
from confluent_kafka import Producer

from clickstream.config import Settings
from clickstream.events import prepare_event
from clickstream.migrate import migrate
from clickstream.topics import TopicCreator
from tests.infra.kafka import KafkaBroker
from tests.infra.postgres import PostgresServer
from tests.infra.redis_server import RedisServer
from tests.infra.run_dir import RunDir
from tests.integration.clickstream.pipeline import Pipeline, free_port

HERE = Path(__file__).resolve().parent
CORES = os.cpu_count() or 1


def wrk(script: str, url: str, seconds: int, connections: int, **env: str) -> dict[str, Any]:
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s",
         str(HERE / script), url],
        capture_output=True, text=True, env={**os.environ, **env}, check=True)
    out = done.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    total = int(re.search(r"(\d+) requests in", out)[1])
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    latency = dict(re.findall(r"\s+(50|99)%\s+([\d.]+\w+)", out))
    return {"requests_per_s": round(rate), "requests": total,
            "non_2xx": int(errors[1]) if errors else 0,
            "latency_p50": latency.get("50"), "latency_p99": latency.get("99")}


def _tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and of all its descendants alive now (the server's workers)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            total += _cpu_seconds(current)
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


class CpuMeter:
    """CPU seconds each named process tree spends between start and stop."""

    def __init__(self, **pids: int) -> None:
        self.pids = pids
        self.start = {name: _tree_cpu_seconds(pid) for name, pid in pids.items()}

    def ms_per_1000(self, events: int) -> dict[str, float]:
        return {f"{name}_cpu_ms_per_1000_events":
                round((_tree_cpu_seconds(pid) - self.start[name]) * 1e6 / max(events, 1), 1)
                for name, pid in self.pids.items()}


def _sample_events(count: int) -> list[bytes]:
    """Events as the Event API writes them to Kafka for single.lua's requests: the
    payload of the producer benchmark, so that both send the same bytes."""
    received = datetime.now(timezone.utc)
    values = []
    for n in range(count):
        event = {"userId": f"user-{n % 5000}", "event": "Bench",
                 "properties": {"n": n, "plan": "pro", "price": 9.99},
                 "context": {"library": {"name": "wrk"}}}
        prepared = prepare_event(event, "track", received, "127.0.0.1", id_scope="app:1",
                                 index=0)
        values.append(json.dumps(prepared, separators=(",", ":"), ensure_ascii=False).encode())
    return values


def bench_producer_reference(kafka: KafkaBroker, topic: str, records: int,
                             out: Path, linger_ms: float) -> dict[str, Any]:
    """Kafka's own producer benchmark with our events as its payload and our producer's
    durability and batching settings: what this broker can take."""
    payloads = _sample_events(1000)
    out.write_bytes(b"\n".join(payloads))
    meter = CpuMeter(broker=kafka.pid)
    done = subprocess.run(kafka.java(
        "org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
        "--num-records", str(records), "--throughput", "-1", "--payload-file", str(out),
        "--producer-props", f"bootstrap.servers={kafka.bootstrap}", "acks=all",
        "enable.idempotence=true", "compression.type=lz4",
        f"linger.ms={round(linger_ms)}", "batch.size=1000000"),
        capture_output=True, text=True, check=True, timeout=600)
    summary = done.stdout.strip().splitlines()[-1]
    rate = float(re.search(r"records sent, ([\d.]+) records/sec", summary)[1])
    p99 = re.search(r"([\d.]+) ms 99th", summary)
    return {"records": records, "record_bytes": round(sum(map(len, payloads)) / len(payloads)),
            "events_per_s": round(rate), "latency_p99": f"{p99[1]}ms" if p99 else None,
            **meter.ms_per_1000(records)}


def bench_static_reference(seconds: int) -> dict[str, Any]:
    """wrk against a static answer of the same HTTP server: what the HTTP layer can do."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "rsgi", "--loop", "uvloop",
         "--workers", str(CORES), "--port", str(port), "--working-dir", str(HERE),
         "--no-ws", "--log-level", "warning", "static_app:app"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.post(url, timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        meter = CpuMeter(server=server.pid)
        result = wrk("single.lua", url, seconds, 64, BENCH_AUTH="")
        result.update(meter.ms_per_1000(result["requests"]))
        return result
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)


def bench_event_api(pipeline: Pipeline, kafka: KafkaBroker, key: str, seconds: int,
                    log_dir: Path, linger_ms: float) -> dict[str, Any]:
    auth = base64.b64encode(f"{key}:".encode()).decode()
    results: dict[str, Any] = {"producer_linger_ms": linger_ms,
                               "reference_static_answer": bench_static_reference(seconds)}
    api = pipeline.event_api(workers=CORES, CLICKSTREAM_PRODUCER_LINGER_MS=str(linger_ms))
    wrk("single.lua", pipeline.api_url, 3, 32, BENCH_AUTH=auth)  # warm-up

    meter = CpuMeter(server=api.popen.pid, broker=kafka.pid)
    single = wrk("single.lua", pipeline.api_url, seconds, 64, BENCH_AUTH=auth)
    single.update(meter.ms_per_1000(single["requests"] - single["non_2xx"]))
    results["single_event"] = single

    acks, refused = asyncio.run(_paced_requests(pipeline.api_url, key, 5000, seconds, batch=0))
    results["single_event_at_5000_per_s"] = {"acknowledged": len(acks), "refused": refused,
                                             "request_to_api_ack": _summary(acks)}

    meter = CpuMeter(server=api.popen.pid, broker=kafka.pid)
    batch = wrk("batch.lua", pipeline.api_url, seconds, 16, BENCH_AUTH=auth, BENCH_BATCH="100")
    batch["events_per_s"] = batch["requests_per_s"] * 100
    batch.update(meter.ms_per_1000((batch["requests"] - batch["non_2xx"]) * 100))
    results["batch_of_100"] = batch
    results["reference_kafka_producer_perf_test"] = bench_producer_reference(
        kafka, f"{pipeline.prefix}.perf", max(batch["requests"] * 100, 100_000),
        log_dir / "perf-payload.txt", linger_ms)
    return results


def _fill(bootstrap: str, topic: str, app_id: int, total: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20,
                         "compression.type": "lz4", "partitioner": "murmur2_random"})
    headers = [("app_id", str(app_id).encode())]
    for n in range(total):
        user = f"user-{n % 5000}"
        event = {"type": "track", "event": "Bench", "userId": user, "messageId": str(uuid.uuid4()),
                 "properties": {"n": n, "plan": "pro", "price": 9.99},
                 "context": {"library": {"name": "bench"}, "ip": "127.0.0.1"},
                 "receivedAt": "2024-05-01T12:00:00.000Z", "timestamp": "2024-05-01T12:00:00.000Z"}
        while True:
            try:
                producer.produce(topic, json.dumps(event).encode(), user.encode(), headers=headers)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(60)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _routed_events(metrics_port: str, destinations: int) -> Callable[[], int | None]:
    """Progress of the router, from its own metrics. (Its offsets are committed in
    transactions, and a committed-offset query waits for a moment with none open.)"""

    def progress() -> int | None:
        try:
            text = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        except requests.RequestException:
            return None
        routed = re.findall(r"^clickstream_events_routed_total\{[^}]*\} ([\d.e+]+)$", text,
                            re.MULTILINE)
        return int(sum(float(v) for v in routed)) // destinations

    return progress


def _timed_copy(pid: int, progress: Callable[[], int | None], total: int) -> dict[str, Any]:
    """Watch a copy of ``total`` events; time and CPU of the last 95 %."""
    t0 = cpu0 = done0 = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        time.sleep(0.1)
        done = progress()
        if done is None:
            continue
        if t0 is None and done >= total * 0.05:
            t0, cpu0, done0 = time.monotonic(), _cpu_seconds(pid), done
        if t0 is not None and done >= total:
            elapsed, cpu = time.monotonic() - t0, _cpu_seconds(pid) - cpu0
            events = done - done0
            return {"events": events, "events_per_s": round(events / elapsed),
                    "cpu_seconds": round(cpu, 2),
                    "events_per_cpu_second": round(events / cpu)}
    raise TimeoutError("the copy did not finish")


def bench_router(pipeline: Pipeline, app_id: int, total: int) -> dict[str, Any]:
    prefix, bootstrap, partitions = pipeline.prefix, pipeline.bootstrap, 4
    for name in ("Hook A", "Hook B"):
        pipeline.create_destination(app_id, name, "webhook", {"url": "http://127.0.0.1:9/"})
    raw = f"{prefix}.raw"
    TopicCreator(bootstrap, partitions).ensure([raw, f"{prefix}.copy"])
    _fill(bootstrap, raw, app_id, total)

    router = pipeline.router()
    routed = _timed_copy(router.popen.pid, _routed_events(router.env["METRICS_PORT"], 2), total)
    router.stop()
    routed["destinations"] = 2  # each event is written twice
    copy = subprocess.run([sys.executable, str(HERE / "passthrough.py"), bootstrap, raw,
                           f"{prefix}.copy", str(total)],
                          capture_output=True, text=True, check=True, timeout=600)
    reference = json.loads(copy.stdout)
    return {"router": routed, "reference_passthrough_one_topic": reference}


async def _paced_requests(api_url: str, key: str, rate: int, seconds: int,
                          batch: int) -> tuple[list[float], dict[str, int]]:
    """``rate`` events/s in requests of ``batch`` events (0: one event per request to
    ``/v1/track``), at fixed times (open loop), over 64 keep-alive connections.

    Plain asyncio streams rather than an HTTP library: at 1,000 requests/s a Python
    client library would take a core of this 2-core machine from the pipeline."""
    host, port = api_url.removeprefix("http://").split(":")
    auth = base64.b64encode(f"{key}:".encode()).decode()
    due: asyncio.Queue[int] = asyncio.Queue()  # when each request is due (ns)
    acks: list[float] = []
    refused: Counter[str] = Counter()

    async def connection(n: int) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        while (sent := await due.get()) >= 0:
            # Latency counts from when the request was due, not when a connection got
            # to it, so a slow server cannot hide its queueing (coordinated omission).
            events = [{"type": "track", "userId": f"user-{n}-{len(acks)}-{i}",
                       "event": "Latency", "properties": {"sent_ns": sent}}
                      for i in range(max(batch, 1))]
            body = json.dumps({"batch": events} if batch else events[0]).encode()
            writer.write(f"POST {'/v1/batch' if batch else '/v1/track'} HTTP/1.1\r\n"
                         f"Host: {host}\r\n"
                         f"Authorization: Basic {auth}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: (\d+)", head)[1])
            await reader.readexactly(length)
            if head.startswith(b"HTTP/1.1 200"):
                acks.append((time.time_ns() - sent) / 1e6)
            else:  # an overloaded server refuses (503) what it cannot store in time
                refused[head.split(b"\r\n", 1)[0].decode()] += 1
        writer.close()

    workers = [asyncio.create_task(connection(n)) for n in range(64)]
    start = time.monotonic()
    requests_per_s = rate / max(batch, 1)
    for n in range(int(requests_per_s * seconds)):
        await asyncio.sleep(max(0.0, start + n / requests_per_s - time.monotonic()))
        due.put_nowait(time.time_ns())
    for _ in workers:
        due.put_nowait(-1)
    await asyncio.gather(*workers)
    return acks, dict(refused)


def _delivered_since(out: Path, before: int, expected: int) -> list[list[str]]:
    """The receiver's lines after the first ``before``, once ``expected`` are there
    (or 30 s passed: what is missing then is reported as not delivered)."""
    deadline = time.monotonic() + 30
    while True:
        lines = out.read_text().splitlines()[before:] if out.exists() else []
        if len(lines) >= expected or time.monotonic() > deadline:
            return [line.split() for line in lines]
        time.sleep(0.2)


def bench_latency(pipeline: Pipeline, app_id: int, key: str, rates: tuple[int, ...],
                  seconds: int, out: Path) -> dict[str, Any]:
    """At each of ``rates`` events/s, as single-event requests and as batches of 10."""
    port = free_port()
    receiver = subprocess.Popen([sys.executable, str(HERE / "receiver.py"), str(port),
                                 str(out)])
    pipeline.create_destination(app_id, "Latency", "webhook",
                                {"url": f"http://127.0.0.1:{port}/", "batch_size": 100},
                                filters={"events": ["Latency"]})
    pipeline.event_api(workers=CORES)
    pipeline.router(name="router-latency")
    pipeline.worker("webhook")
    # Unreported: the router's and worker's first transactions and fetches, and the
    # broker's transaction code, are slower until warm.
    warm_up, _refused = asyncio.run(_paced_requests(pipeline.api_url, key, rates[0], 5,
                                                     batch=0))
    _delivered_since(out, 0, len(warm_up))

    results: dict[str, Any] = {}
    for rate in rates:
        for batch in (1, 10):
            before = len(out.read_text().splitlines()) if out.exists() else 0
            acks, refused = asyncio.run(_paced_requests(pipeline.api_url, key, rate, seconds,
                                                        batch))
            lines = _delivered_since(out, before, len(acks) * batch)
            end_to_end = [(int(arrival) - int(sent)) / 1e6 for arrival, sent, _ in lines]
            results[f"{rate}_events_per_s_{batch}_per_request"] = {
                "acknowledged": len(acks), "refused": refused,
                "events_delivered": len(end_to_end),
                "request_to_webhook": _summary(end_to_end),
                "request_to_api_ack": _summary(acks)}
    receiver.terminate()
    return results


def _summary(values: list[float]) -> dict[str, float]:
    cuts = quantiles(values, n=100)
    return {"p50_ms": round(cuts[49], 2), "p90_ms": round(cuts[89], 2),
            "p99_ms": round(cuts[98], 2), "max_ms": round(max(values), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--router-events", type=int, default=200_000)
    parser.add_argument("--linger-ms", type=float, default=Settings.producer_linger_ms,
                        help="the Event API producer's linger.ms (a knob to measure)")
    parser.add_argument("--only", choices=["event_api", "router", "end_to_end"], action="append",
                        help="Run only these sections (repeatable).")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")

    run = RunDir()
    servers = [PostgresServer(run), RedisServer(run), KafkaBroker(run)]
    for server in servers:
        server.start()
    postgres, redis_server, kafka = servers
    results: dict[str, Any] = {"machine": {"cores": CORES}}
    try:
        with postgres.fresh_database() as dsn:
            migrate(dsn)
            log_dir = run.subdir("bench-logs")
            pipeline = Pipeline(dsn, kafka.bootstrap, redis_server.flushed_database_url(),
                                f"bench-{uuid.uuid4().hex[:6]}", log_dir)
            app_id, key = pipeline.create_app("bench")
            # A broker just started runs several times slower until its JIT compiler
            # has run: warm it before any section, for the references and for us alike.
            bench_producer_reference(kafka, "bench-warm-up", 300_000,
                                     log_dir / "perf-payload.txt", args.linger_ms)
            sections = {
                "event_api": lambda: bench_event_api(pipeline, kafka, key, args.seconds,
                                                     log_dir, args.linger_ms),
                "router": lambda: bench_router(pipeline, app_id, args.router_events),
                "end_to_end": lambda: bench_latency(pipeline, app_id, key, (1000, 5000),
                                                    args.seconds, log_dir / "latency.txt"),
            }
            for name, section in sections.items():
                if args.only and name not in args.only:
                    continue
                pipeline.prefix = f"bench-{uuid.uuid4().hex[:6]}"
                try:
                    results[name] = section()
                except Exception as exc:  # report the others all the same
                    results[name] = {"error": f"{type(exc).__name__}: {exc}"}
                finally:
                    pipeline.stop_all()
                    pipeline.processes.clear()
    finally:
        for server in reversed(servers):
            server.stop()
        run.remove()
    results["aims"] = aims(results)
    print(json.dumps(results, indent=2))


def _get(results: dict[str, Any], *path: str) -> Any:
    for name in path:
        if not isinstance(results, dict) or name not in results:
            return None
        results = results[name]
    return results


def aims(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each aim of the Event API's speed with what was measured, its reference in the
    same run and the ratio to it."""
    api = results.get("event_api", {})
    e2e = results.get("end_to_end", {})
    rows = [
        ("single-event requests/s", ">=", 12_000, _get(api, "single_event", "requests_per_s"),
         _get(api, "reference_static_answer", "requests_per_s")),
        ("single-event p99 ms at 5,000 requests/s", "<=", 20,
         _get(api, "single_event_at_5000_per_s", "request_to_api_ack", "p99_ms"), None),
        ("batch-of-100 events/s durable", ">=", 60_000, _get(api, "batch_of_100", "events_per_s"),
         _get(api, "reference_kafka_producer_perf_test", "events_per_s")),
        ("server CPU ms per 1,000 single events", "<=", 120,
         _get(api, "single_event", "server_cpu_ms_per_1000_events"),
         _get(api, "reference_static_answer", "server_cpu_ms_per_1000_events")),
        ("broker CPU ms per 1,000 single events", "<=", 10,
         _get(api, "single_event", "broker_cpu_ms_per_1000_events"),
         _get(api, "reference_kafka_producer_perf_test", "broker_cpu_ms_per_1000_events")),
        ("end-to-end p99 ms at 1,000 events/s (single events)", "<=", 50,
         _get(e2e, "1000_events_per_s_1_per_request", "request_to_webhook", "p99_ms"), None),
        ("end-to-end p99 ms at 5,000 events/s (single events)", "<=", 200,
         _get(e2e, "5000_events_per_s_1_per_request", "request_to_webhook", "p99_ms"), None),
    ]
    out = []
    for name, sense, aim, measured, reference in rows:
        row: dict[str, Any] = {"aim": name, "target": f"{sense} {aim}", "measured": measured,
                               "reference": reference}
        if isinstance(measured, int | float):
            row["met"] = measured >= aim if sense == ">=" else measured <= aim
            if reference:
                row["ratio_to_reference"] = round(measured / reference, 3)
        out.append(row)
    return out


if __name__ == "__main__":
    main()
