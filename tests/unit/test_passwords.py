import re

from tierone.passwords import temporary_password


def test_temporary_passwords_meet_entra_complexity_and_are_distinct():
    seen = {temporary_password() for _ in range(200)}
    assert len(seen) == 200
    for password in seen:
        assert re.fullmatch(r"[A-Za-z0-9]{4}(-[A-Za-z0-9]{4}){3}", password)
        assert re.search("[A-Z]", password)
        assert re.search("[a-z]", password)
        assert re.search("[0-9]", password)
        assert not set(password) & set("0O1lI")
