from clickstream.destination_settings import mask_password


def test_shown_settings_hide_passwords() -> None:
    assert mask_password("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert mask_password("host=h password='a b' user=u") == "host=h password=*** user=u"
    assert mask_password("redis://:pw@r:6379/0") == "redis://:***@r:6379/0"
    assert mask_password("https://hooks.example/x") == "https://hooks.example/x"


def test_shown_settings_hide_passwords_and_header_values():
    from clickstream.destination_settings import shown_settings

    assert shown_settings({"url": "https://u:pw@hooks.example/x?token=t&v=2", "batch_size": 5,
                           "headers": {"Authorization": "Bearer t0ken"}}) == {
        "url": "https://u:***@hooks.example/x?token=***&v=***", "batch_size": 5,
        "headers": {"Authorization": "***"}}


def test_webhook_urls_in_errors_carry_no_credentials():
    from clickstream.workers.webhook import shown_url

    assert shown_url("https://user:s3cret@hooks.example:8443/in?token=t0ken#x") == (
        "https://hooks.example:8443/in")
    assert shown_url("http://t0ken@[::1]:9/hook") == "http://[::1]:9/hook"
    assert shown_url("http://hooks.example/in") == "http://hooks.example/in"


def test_a_warehouse_streams_unless_its_load_is_batch():
    import pytest

    from clickstream.destination_settings import (
        InvalidSettings,
        loaded_in_batches,
        parse_settings,
    )

    assert parse_settings("warehouse", {"dsn": "postgresql://w"}).load == "stream"
    assert parse_settings("warehouse", {"dsn": "postgresql://w", "load": "batch"}).load == "batch"
    with pytest.raises(InvalidSettings, match="load must be one of stream, batch, not 'nightly'"):
        parse_settings("warehouse", {"dsn": "postgresql://w", "load": "nightly"})
    assert loaded_in_batches("warehouse", {"load": "batch"})
    assert not loaded_in_batches("warehouse", {})
    assert not loaded_in_batches("webhook", {"load": "batch"})  # only warehouses batch
