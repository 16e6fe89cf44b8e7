from clickstream.cli import _mask


def test_shown_settings_hide_passwords() -> None:
    assert _mask("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert _mask("host=h password='a b' user=u") == "host=h password=*** user=u"
    assert _mask("redis://:pw@r:6379/0") == "redis://:***@r:6379/0"
    assert _mask("https://hooks.example/x") == "https://hooks.example/x"
