"""Backoff between delivery attempts and the retry budget of a destination."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from clickstream.destination_settings import RetryPolicy

#: A receiver's Retry-After is honoured up to this long; beyond it we would rather
#: probe again than trust a misconfigured header.
MAX_RETRY_AFTER = 3600.0


class DeliveryError(Exception):
    """A delivery attempt failed. ``retryable`` False sends it straight to dead letters.

    ``rejected``: the positions in the batch of the only events that failed, for good
    (the destination refused them as they are), the others having been delivered; only
    those go to dead letters. Empty: the whole batch failed.
    """

    def __init__(self, message: str, retryable: bool = True,
                 retry_after: float | None = None, rejected: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.retryable = retryable and not rejected
        self.retry_after = retry_after
        self.rejected = rejected


def backoff_seconds(attempt: int, policy: RetryPolicy, retry_after: float | None = None,
                    rand: Callable[[], float] = random.random) -> float:
    """Delay before attempt ``attempt + 1``, after ``attempt`` failures (1-based).

    Exponential with "equal jitter": half the step is fixed, half random, so retries
    of many events spread out but never come back immediately. A receiver's
    ``Retry-After`` is a floor.
    """
    step = min(policy.max_backoff_seconds,
               policy.initial_backoff_seconds * 2 ** max(0, attempt - 1))
    delay = step / 2 + rand() * step / 2
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


@dataclass
class RetryState:
    """Failures so far of the batch at the head of one partition."""

    attempts: int = 0
    first_failure: float | None = None
    next_attempt_at: float = 0.0
    last_error: str | None = None

    def failed(self, now: float, error: DeliveryError, policy: RetryPolicy,
               rand: Callable[[], float] = random.random) -> bool:
        """Record a failure; True if the batch may be tried again."""
        self.attempts += 1
        self.last_error = str(error)
        if self.first_failure is None:
            self.first_failure = now
        if not error.retryable or self.attempts >= policy.max_attempts:
            return False
        delay = backoff_seconds(self.attempts, policy, error.retry_after, rand)
        if now + delay - self.first_failure > policy.retry_window_seconds:
            return False
        self.next_attempt_at = now + delay
        return True

    def reset(self) -> None:
        self.attempts = 0
        self.first_failure = None
        self.next_attempt_at = 0.0
        self.last_error = None
