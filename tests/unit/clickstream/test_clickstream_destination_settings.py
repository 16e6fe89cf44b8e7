from clickstream.destination_settings import mask_password


def test_shown_settings_hide_passwords() -> None:
    assert mask_password("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert mask_password("host=h password='a b' user=u") == "host=h password=*** user=u"
    assert mask_password("redis://:pw@r:6379/0") == "redis://:***@r:6379/0"
    assert mask_password("https://hooks.example/x") == "https://hooks.example/x"
