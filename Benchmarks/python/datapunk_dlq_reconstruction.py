"""A RECONSTRUCTION, not the original: an in-memory asyncio dead-letter queue in the shape of Datapunk's.

swift-dead-letters descends from two Python dead-letter queues; one is Datapunk's in-memory asyncio DLQ. Its
code is not available to this project, only a description of its parts: a FailureReason enum, a config
dataclass (retry attempts, delays, expiry), a FailedMessage dataclass (the original message, the failure
reason, the error text, a timestamp, the retry count, metadata), and a DeadLetterQueue keeping the messages in
a dict under an asyncio lock, with retries in batches. This file rebuilds that shape as plainly as the
description allows, so that the benchmark suite can measure the same workload beside the Swift in-memory
store, in the same run, each configuration in a fresh process:

    add:    an error raised and caught, then `add_message` with a small JSON payload, attempts 3 and one
            metadata pair;
    replay: `retry_messages` over every message with a no-op async handler (each success removes it).

Usage: python3 datapunk_dlq_reconstruction.py add|replay COUNT    (prints "letters-per-second")
"""

import asyncio
import sys
import time
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Awaitable, Callable, Dict, Optional


class FailureReason(Enum):
    VALIDATION_ERROR = "validation_error"
    PROCESSING_ERROR = "processing_error"
    TIMEOUT = "timeout"
    DEPENDENCY_ERROR = "dependency_error"
    UNKNOWN = "unknown"


@dataclass
class DLQConfig:
    max_retries: int = 3
    retry_delay: float = 0.0
    backoff_factor: float = 2.0
    message_ttl: timedelta = timedelta(days=7)
    batch_size: int = 100
    persist_path: Optional[str] = None


@dataclass
class FailedMessage:
    id: str
    message: Dict[str, Any]
    failure_reason: FailureReason
    error: str
    timestamp: datetime
    retry_count: int = 0
    metadata: Dict[str, str] = field(default_factory=dict)


class DeadLetterQueue:
    def __init__(self, config: Optional[DLQConfig] = None):
        self.config = config or DLQConfig()
        self.messages: Dict[str, FailedMessage] = {}
        self._lock = asyncio.Lock()
        # Ids from a counter: uuid4 costs about 15 µs on this project's machine (a getrandom call per id), which
        # would make this reconstruction ten times slower than the figures measured for the original; a
        # counter keeps the Python side on the fast side of any doubt.
        self._ids = itertools.count(1)
        self.stats = {"added": 0, "retried": 0, "succeeded": 0, "failed": 0, "expired": 0}

    async def add_message(
        self,
        message: Dict[str, Any],
        failure_reason: FailureReason,
        error: Exception,
        retry_count: int = 0,
        metadata: Optional[Dict[str, str]] = None,
    ) -> str:
        async with self._lock:
            message_id = f"msg-{next(self._ids)}"
            self.messages[message_id] = FailedMessage(
                id=message_id,
                message=message,
                failure_reason=failure_reason,
                error=str(error),
                timestamp=datetime.utcnow(),
                retry_count=retry_count,
                metadata=metadata or {},
            )
            self.stats["added"] += 1
            return message_id

    async def retry_messages(self, handler: Callable[[Dict[str, Any]], Awaitable[None]]) -> int:
        """Retries every message, a batch at a time; a success removes it."""
        succeeded = 0
        async with self._lock:
            pending = list(self.messages.values())
        for start in range(0, len(pending), self.config.batch_size):
            for failed in pending[start:start + self.config.batch_size]:
                self.stats["retried"] += 1
                try:
                    await handler(failed.message)
                except Exception:
                    failed.retry_count += 1
                    self.stats["failed"] += 1
                    continue
                async with self._lock:
                    self.messages.pop(failed.id, None)
                self.stats["succeeded"] += 1
                succeeded += 1
        return succeeded


class ProcessingError(Exception):
    pass


def payload(index: int) -> Dict[str, Any]:
    return {"order_id": index, "amount": 19.99, "currency": "EUR"}


async def fill(dlq: DeadLetterQueue, count: int) -> None:
    for index in range(count):
        message = payload(index)
        try:
            raise ProcessingError(f"processing failed for order {index}")
        except ProcessingError as error:
            await dlq.add_message(
                message, FailureReason.PROCESSING_ERROR, error, retry_count=3, metadata={"tenant": "acme"}
            )


async def no_op(message: Dict[str, Any]) -> None:
    return None


async def main(operation: str, count: int) -> float:
    dlq = DeadLetterQueue()
    if operation == "add":
        start = time.perf_counter()
        await fill(dlq, count)
        elapsed = time.perf_counter() - start
        assert len(dlq.messages) == count
        return count / elapsed
    if operation == "replay":
        await fill(dlq, count)
        start = time.perf_counter()
        succeeded = await dlq.retry_messages(no_op)
        elapsed = time.perf_counter() - start
        assert succeeded == count and not dlq.messages
        return count / elapsed
    raise SystemExit(f"unknown operation {operation}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    print(f"{asyncio.run(main(sys.argv[1], int(sys.argv[2]))):.0f}")
