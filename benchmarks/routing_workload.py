"""The shared-prefix workload of ``bench_routing.py`` and its figures (no cluster in here).

A few long system prompts (clinical letter templates, one per application of the tenant) and
varied questions: each request is one template followed by one question, sent as a streamed
completion through the front door, several at a time. Time to first token is measured at the
client (the first streamed token), tokens per second over the whole run, and the prompt tokens
vLLM found in its prefix cache from each answer's ``usage.prompt_tokens_details``.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import statistics
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

# The words the templates are drawn from: a clinical register, so the tokenizer's pieces are
# those of prose (about four characters a token for the tiny model's tokenizer).
CLINICAL_TEXT = (
    "patient admitted with chest pain dyspnoea fever cough treated intravenous antibiotics "
    "oral therapy discharged follow up clinic weeks cardiology respiratory renal function "
    "stable improving medication reconciliation allergies none known dose daily twice "
    "monitoring blood pressure heart rate saturation oxygen room air mobilising independently "
    "social history lives alone carers family general practitioner letter summary findings "
    "investigations imaging chest radiograph echocardiogram ejection fraction preserved "
    "laboratory results haemoglobin creatinine potassium sodium within normal limits plan "
    "review advice return symptoms worsen emergency department safety netting discussed"
)
WORDS = CLINICAL_TEXT.split()
QUESTIONS = (
    "Summarise the admission in two sentences.",
    "List the medicines to continue at home.",
    "When should the patient be seen in clinic?",
    "Write the advice for the patient's family.",
    "What follow-up investigations are planned?",
    "Explain the diagnosis in plain words.",
    "Which results need repeating, and when?",
    "Draft the letter's opening paragraph.",
)


def system_prompts(count: int, words: int, tag: str) -> list[str]:
    """``count`` templates of about ``words`` words each. ``tag`` starts every one: a run's
    templates are its own, so no run finds another's in a cache."""
    rng = random.Random(tag)
    return [
        f"Template {tag}-{n}. You write discharge letters. "
        + " ".join(rng.choice(WORDS) for _ in range(words))
        + "\n\n"
        for n in range(count)
    ]


def requests_of(templates: list[str], count: int, seed: int) -> list[str]:
    """``count`` prompts: a template chosen at random, then a question."""
    rng = random.Random(seed)
    return [rng.choice(templates) + rng.choice(QUESTIONS) for _ in range(count)]


@dataclass(frozen=True)
class Outcome:
    """One request as the client saw it."""

    status: int
    ttft: float | None  # seconds to the first streamed token
    seconds: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0


async def _one(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], body: dict[str, Any]
) -> Outcome:
    started = time.perf_counter()
    ttft: float | None = None
    usage: dict[str, Any] = {}
    async with http.post(url, json=body, headers=headers) as response:
        if response.status != 200:
            await response.read()
            return Outcome(response.status, None, time.perf_counter() - started)
        async for raw in response.content:
            line = raw.decode().strip()
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[5:])
            if chunk.get("choices") and ttft is None:
                ttft = time.perf_counter() - started
            usage = chunk.get("usage") or usage
    details = usage.get("prompt_tokens_details") or {}
    return Outcome(
        200,
        ttft,
        time.perf_counter() - started,
        int(usage.get("prompt_tokens") or 0),
        int(usage.get("completion_tokens") or 0),
        int(details.get("cached_tokens") or 0),
    )


async def run(
    url: str,
    headers: dict[str, str],
    model: str,
    prompts: list[str],
    concurrency: int,
    max_tokens: int,
    context: ssl.SSLContext | None = None,
) -> tuple[list[Outcome], float]:
    """Send every prompt, ``concurrency`` at a time, in order; (outcomes, wall seconds)."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for prompt in prompts:
        queue.put_nowait(prompt)
    outcomes: list[Outcome] = []
    timeout = aiohttp.ClientTimeout(total=600)
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=context if context else True)

    async def client(http: aiohttp.ClientSession) -> None:
        while not queue.empty():
            prompt = queue.get_nowait()
            body = {
                "model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
                # Every answer the same length (random weights may say "end" at once).
                "ignore_eos": True,
                "stream": True, "stream_options": {"include_usage": True},
            }  # fmt: skip
            outcomes.append(await _one(http, url, headers, body))

    started = time.perf_counter()
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
    return outcomes, time.perf_counter() - started


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (no interpolation between two requests' figures)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))]


def figures(outcomes: list[Outcome], wall: float) -> dict[str, Any]:
    ok = [o for o in outcomes if o.status == 200 and o.ttft is not None]
    ttfts = [o.ttft for o in ok if o.ttft is not None]
    prompt = sum(o.prompt_tokens for o in ok)
    return {
        "requests": len(outcomes),
        "errors": len(outcomes) - len(ok),
        "ttft_p50_ms": round(percentile(ttfts, 0.5) * 1000, 1) if ttfts else None,
        "ttft_p90_ms": round(percentile(ttfts, 0.9) * 1000, 1) if ttfts else None,
        "ttft_mean_ms": round(statistics.fmean(ttfts) * 1000, 1) if ttfts else None,
        "tokens_per_s": round(sum(o.completion_tokens for o in ok) / wall, 1) if wall else None,
        "prompt_tokens_mean": round(prompt / len(ok)) if ok else None,
        "cached_share_from_usage": round(sum(o.cached_tokens for o in ok) / prompt, 3)
        if prompt
        else None,
        "wall_s": round(wall, 1),
    }
