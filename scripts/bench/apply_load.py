"""Load generator of the application benchmark: distinct applicants over keep-alive HTTP.

Runs in its own process (spawned), on raw asyncio streams with uvloop. Requests are
built before the clock starts (one distinct applicant each: id number, phone, name,
device), so the generator spends its time on the wire only. Each answer is parsed
for its status, its decision and the node's Server-Timing phases, so the benchmark
can say where the time went. Closed loop (`rate_per_s` 0): each connection sends
its next request when the last is answered. Open loop: requests are due at fixed
times and latency counts from when a request was due, so queueing is not hidden.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import orjson

from node_api.onboarding.identity import make_resident_id
from node_api.risk.fraud_facts import Gender
from scripts.applicants import GOOD_PROFILE, Characteristics

REGIONS = ("110101", "310101", "440103", "510104", "330102")
VARIANTS: tuple[Characteristics, ...] = (
    {},
    {"status_of_existing_checking_account": "... < 0 DM", "duration_in_month": 30},
    {"credit_history": "existing credits paid back duly till now", "credit_amount": 7000},
    {"status_of_existing_checking_account": "... < 0 DM", "purpose": "education",
     "duration_in_month": 48, "housing": "for free", "savings_account_and_bonds": "... < 100 DM"},
)  # fmt: skip


@dataclass(frozen=True)
class ApplyPlan:
    host: str
    port: int
    token: str
    product_code: str
    first_number: int
    count: int
    connections: int
    rate_per_s: int = 0
    shared_device_share: float = 0.05


@dataclass
class ApplyResult:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    decisions: dict[str, int] = field(default_factory=dict)
    phases_ms: dict[str, list[float]] = field(default_factory=dict)
    elapsed_s: float = 0.0
    cpu_s: float = 0.0
    """CPU the generator itself used while the load ran."""


def _letters(number: int) -> str:
    text = ""
    while True:
        number, digit = divmod(number, 26)
        text = chr(ord("a") + digit) + text
        if number == 0:
            return text


def build_body(number: int, product_code: str, rng: random.Random, shared_share: float) -> bytes:
    """One distinct applicant (number-derived identity), a random profile variant."""
    sequence = number % 1000
    gender = Gender.MALE if sequence % 2 else Gender.FEMALE
    birth = date(1970, 1, 1) + timedelta(days=(number // 1000) % 9000)
    region = REGIONS[(number // 9_000_000) % len(REGIONS)]
    device = f"farm-{rng.randrange(20)}" if rng.random() < shared_share else f"dev-{number}"
    body = {
        "product_code": product_code,
        "name": f"Bench {_letters(number)}",
        "id_number": make_resident_id(region, birth, sequence, gender),
        "phone": f"13{number % 10**9:09d}",
        "monthly_income_fen": rng.choice([500_000, 1_000_000, 1_500_000, 3_000_000]),
        "device_id": device,
        "ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        "channel_id": "app",
        "characteristics": {**GOOD_PROFILE, **rng.choice(VARIANTS)},
    }
    return orjson.dumps(body)


def _request(plan: ApplyPlan, body: bytes, key: str) -> bytes:
    head = (
        f"POST /v1/applications HTTP/1.1\r\nHost: {plan.host}\r\n"
        f"Authorization: Bearer {plan.token}\r\nIdempotency-Key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read(reader: asyncio.StreamReader, result: ApplyResult) -> None:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    lines = head.split("\r\n")
    status = int(lines[0][9:12])
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    result.statuses[status] = result.statuses.get(status, 0) + 1
    if status == 201:
        decision = str(orjson.loads(body)["decision"])
        result.decisions[decision] = result.decisions.get(decision, 0) + 1
    for item in headers.get("server-timing", "").split(","):
        name, _, duration = item.strip().partition(";dur=")
        if duration:
            result.phases_ms.setdefault(name, []).append(float(duration))


async def _connection(
    plan: ApplyPlan, requests: list[bytes], result: ApplyResult, start: float
) -> None:
    reader, writer = await asyncio.open_connection(plan.host, plan.port)
    try:
        while requests:
            index = plan.count - len(requests)
            request = requests.pop()
            due = start + index / plan.rate_per_s if plan.rate_per_s else time.perf_counter()
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(request)
            await _read(reader, result)
            result.latencies_ms.append((time.perf_counter() - due) * 1000)
    finally:
        writer.close()


async def run_apply_load(plan: ApplyPlan) -> ApplyResult:
    rng = random.Random(plan.first_number)
    numbers = range(plan.first_number, plan.first_number + plan.count)
    requests = [
        _request(plan, build_body(n, plan.product_code, rng, plan.shared_device_share), f"b{n}")
        for n in numbers
    ]
    requests.reverse()
    result = ApplyResult()
    cpu_start = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(
        *(_connection(plan, requests, result, start) for _ in range(plan.connections))
    )
    result.elapsed_s = time.perf_counter() - start
    result.cpu_s = time.process_time() - cpu_start
    return result


def _process_main(plan: ApplyPlan, queue: Any) -> None:
    import uvloop

    result = uvloop.run(run_apply_load(plan))
    queue.put(result)


def run_apply_load_process(plan: ApplyPlan, timeout_s: float = 600.0) -> ApplyResult:
    """Run the plan in a separate process (its own core time and GIL)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_process_main, args=(plan, queue))
    process.start()
    result: ApplyResult = queue.get(timeout=timeout_s)
    process.join(timeout=30)
    return result
