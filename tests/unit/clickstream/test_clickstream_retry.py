import pytest

from clickstream.destination_settings import InvalidSettings, RetryPolicy, parse_settings
from clickstream.retry import DeliveryError, RetryState, backoff_seconds
from clickstream.workers.webhook import parse_retry_after, sign

POLICY = RetryPolicy(max_attempts=5, retry_window_seconds=100, initial_backoff_seconds=1,
                     max_backoff_seconds=8)


@pytest.mark.parametrize(("attempt", "low", "high"), [
    (1, 0.5, 1), (2, 1, 2), (3, 2, 4), (4, 4, 8), (5, 4, 8), (12, 4, 8)])
def test_backoff_is_exponential_with_jitter_and_capped(attempt: int, low: float,
                                                       high: float) -> None:
    assert backoff_seconds(attempt, POLICY, rand=lambda: 0.0) == low
    assert backoff_seconds(attempt, POLICY, rand=lambda: 1.0) == high


def test_retry_after_is_a_floor() -> None:
    assert backoff_seconds(1, POLICY, retry_after=30, rand=lambda: 1.0) == 30
    assert backoff_seconds(4, POLICY, retry_after=0.1, rand=lambda: 0.0) == 4


def test_budget_by_attempts() -> None:
    state = RetryState()
    outcomes = [state.failed(float(t), DeliveryError("503"), POLICY, rand=lambda: 0.0)
                for t in range(5)]
    assert outcomes == [True, True, True, True, False]


def test_budget_by_time_window() -> None:
    policy = RetryPolicy(max_attempts=100, retry_window_seconds=10,
                         initial_backoff_seconds=4, max_backoff_seconds=4)
    state = RetryState()
    assert state.failed(0.0, DeliveryError("x"), policy, rand=lambda: 1.0)  # next at 4
    assert state.failed(4.0, DeliveryError("x"), policy, rand=lambda: 1.0)  # next at 8
    assert not state.failed(8.0, DeliveryError("x"), policy, rand=lambda: 1.0)  # 12 > 10


def test_client_errors_are_not_retried() -> None:
    assert not RetryState().failed(0.0, DeliveryError("400", retryable=False), POLICY)


def test_retry_after_header_forms() -> None:
    assert parse_retry_after("120") == 120
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


def test_signature_is_hmac_sha256_hex() -> None:
    # echo -n '{"a":1}' | openssl dgst -sha256 -hmac key
    assert sign("key", b'{"a":1}') == (
        "sha256=" + __import__("hmac").new(b"key", b'{"a":1}', "sha256").hexdigest())


def test_settings_validation() -> None:
    settings = parse_settings("webhook", {"url": "https://x.example/h", "batch_size": 50,
                                          "max_attempts": 3})
    assert settings.batch_size == 50 and settings.retry.max_attempts == 3
    with pytest.raises(InvalidSettings, match="url"):
        parse_settings("webhook", {"url": "ftp://x"})
    with pytest.raises(InvalidSettings, match="unknown webhook settings: colour"):
        parse_settings("webhook", {"url": "http://x", "colour": "red"})
    with pytest.raises(InvalidSettings, match="dsn"):
        parse_settings("warehouse", {})
    with pytest.raises(InvalidSettings, match="schema"):
        parse_settings("warehouse", {"dsn": "x", "schema": "Bad-Name"})

