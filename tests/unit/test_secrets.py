import pytest

from resources.common.errors import SecretError, ValidationError
from resources.common.secrets import SecretBox, describe, env_reference, new_key


def test_sealed_literal_round_trips_and_hides_the_value() -> None:
    secret_box = SecretBox(new_key())
    sealed = secret_box.store("s3cret-value")
    assert sealed.startswith("fernet:") and "s3cret-value" not in sealed
    assert secret_box.reveal(sealed) == "s3cret-value"
    assert describe(sealed) == "<encrypted>"


def test_literal_without_a_key_is_refused_with_the_remedy() -> None:
    with pytest.raises(SecretError, match=r"FLEETOPS_SECRET_KEY is not set.*fleetops secret-key"):
        SecretBox(None).store("s3cret")


def test_invalid_key_is_refused() -> None:
    with pytest.raises(SecretError, match="not a valid Fernet key"):
        SecretBox("not-a-key").store("s3cret")


def test_env_reference_resolves_at_use(monkeypatch: pytest.MonkeyPatch) -> None:
    secret_box = SecretBox(None)
    stored = secret_box.store("env:ZUORA_SECRET")
    assert stored == "env:ZUORA_SECRET"
    with pytest.raises(SecretError, match="ZUORA_SECRET is not set"):
        secret_box.reveal(stored)
    monkeypatch.setenv("ZUORA_SECRET", "from-env")
    assert secret_box.reveal(stored) == "from-env"


def test_bad_env_reference_names_are_refused() -> None:
    with pytest.raises(ValidationError):
        env_reference("NOT A NAME")


def test_wrong_key_gives_a_clear_error_not_the_token() -> None:
    sealed = SecretBox(new_key()).store("s3cret")
    with pytest.raises(SecretError, match="not the key it was stored with") as raised:
        SecretBox(new_key()).reveal(sealed)
    assert sealed not in str(raised.value)


def test_key_rotation_new_key_first_still_opens_old_secrets() -> None:
    old, new = new_key(), new_key()
    sealed = SecretBox(old).store("s3cret")
    assert SecretBox(f"{new},{old}").reveal(sealed) == "s3cret"


def test_same_compares_values_not_tokens() -> None:
    secret_box = SecretBox(new_key())
    sealed = secret_box.store("s3cret")
    assert secret_box.same(sealed, "s3cret")
    assert not secret_box.same(sealed, "other")
    assert not secret_box.same(sealed, "env:S3CRET")
    assert secret_box.same("env:A", "env:A")
