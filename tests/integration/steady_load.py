"""A steady load from the Python SDK (its retries on), for what happens to clients while pods
come and go: each worker thread has a client of its own and cycles through a list of calls until
stopped. What the SDK raised after its retries are the client errors; the retries it took (its
own log lines) are what it absorbed."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import paitient_secure_model as sdk

Call = Callable[[sdk.SecureModelClient], object]


def generate(deployment: str, max_tokens: int = 16) -> Call:
    def call(client: sdk.SecureModelClient) -> object:
        return client.generate(deployment_id=deployment, prompt="Hello", max_tokens=max_tokens)

    return call


def generate_stream(deployment: str, max_tokens: int = 64) -> Call:
    """A stream read to its end: cut mid-way, it raises (nothing retries a half-read stream)."""

    def call(client: sdk.SecureModelClient) -> object:
        stream = client.generate_stream(
            deployment_id=deployment, prompt="Tell", max_tokens=max_tokens
        )
        return sum(1 for _ in stream)

    return call


def subscription(client: sdk.SecureModelClient) -> object:
    return client.get_subscription()


def deployments(client: sdk.SecureModelClient) -> object:
    return client.list_deployments()


class _Retries(logging.Handler):
    """Counts the SDK's "Retrying ..." lines (one per retry it takes)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.reasons: Counter[str] = Counter()
        self._lock2 = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Retrying"):
            with self._lock2:
                self.reasons[message.split(" in ")[0]] += 1


@dataclass
class Outcome:
    """What the load saw: calls completed, errors raised to the caller, retries absorbed."""

    calls: int
    errors: list[str]
    retries: Counter[str]
    by_call: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        return (
            f"{self.calls} calls, {len(self.errors)} client errors, "
            f"{sum(self.retries.values())} retries absorbed by the SDK"
        )


@dataclass
class SteadyLoad:
    """``workers`` threads, each with a client from ``make_client``, each cycling ``calls``."""

    make_client: Callable[[], sdk.SecureModelClient]
    calls: list[Call]
    workers: int = 4
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _done: Counter[str] = field(default_factory=Counter)
    _errors: list[str] = field(default_factory=list)
    _retries: _Retries = field(default_factory=_Retries)

    def start(self) -> SteadyLoad:
        logger = logging.getLogger("paitient_secure_model")
        logger.addHandler(self._retries)
        logger.setLevel(logging.INFO)
        for i in range(self.workers):
            thread = threading.Thread(target=self._work, args=(i,), daemon=True)
            self._threads.append(thread)
            thread.start()
        return self

    def _work(self, offset: int) -> None:
        client = self.make_client()
        try:
            turn = offset
            while not self._stop.is_set():
                call = self.calls[turn % len(self.calls)]
                name = getattr(call, "__qualname__", "call").split(".")[0]
                try:
                    call(client)
                except sdk.PaitientError as exc:
                    with self._lock:
                        self._errors.append(f"{time.strftime('%H:%M:%S')} {name}: "
                                            f"{type(exc).__name__}: {exc}")  # fmt: skip
                else:
                    with self._lock:
                        self._done[name] += 1
                turn += 1
        finally:
            client.close()

    def calls_so_far(self) -> int:
        with self._lock:
            return sum(self._done.values())

    def stop(self) -> Outcome:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)
        logging.getLogger("paitient_secure_model").removeHandler(self._retries)
        with self._lock:
            return Outcome(sum(self._done.values()), list(self._errors),
                           Counter(self._retries.reasons), Counter(self._done))  # fmt: skip
