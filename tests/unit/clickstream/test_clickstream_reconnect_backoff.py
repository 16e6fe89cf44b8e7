"""When a process asks an unreachable Postgres again."""

from clickstream.reconnect_backoff import ReconnectBackoff


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_delay_doubles_with_each_failure_up_to_the_most_and_a_success_resets_it():
    clock = Clock()
    backoff = ReconnectBackoff(first=0.5, most=4.0, clock=clock)
    assert backoff.may_try() and not backoff.failing
    waited = []
    for _ in range(6):
        backoff.failed()
        start = clock.now
        while not backoff.may_try():
            clock.now += 0.25
        waited.append(clock.now - start)
    assert waited == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.failing
    backoff.succeeded()
    assert backoff.may_try() and not backoff.failing
    backoff.failed()
    assert not backoff.may_try()
    clock.now += 0.5
    assert backoff.may_try()
