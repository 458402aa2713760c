"""Access tokens and encrypted refresh tokens."""

from __future__ import annotations

import time

import jwt
import pytest
from eq_backend.security import (
    TokenError,
    create_access_token,
    decode_access_token,
    decrypt_secret,
    encrypt_secret,
)
from eq_backend.settings import Settings

SETTINGS = Settings(
    secret_key="unit-secret-key-long-enough-for-hmac-sha512-signatures-0123456789",
    access_token_expire_minutes=30,
)


def test_token_round_trip_has_sub_exp_iat() -> None:
    token = create_access_token(SETTINGS, "ann@example.com", now=1_000_000)
    claims = jwt.decode(
        token,
        "unit-secret-key-long-enough-for-hmac-sha512-signatures-0123456789",
        algorithms=["HS256"],
        options={"verify_exp": False},
    )
    assert claims == {"sub": "ann@example.com", "iat": 1_000_000, "exp": 1_000_000 + 1800}
    assert decode_access_token(SETTINGS, create_access_token(SETTINGS, "a@b.c")) == "a@b.c"


def test_expired_token_is_rejected() -> None:
    token = create_access_token(SETTINGS, "a@b.c", now=time.time() - 3600)
    with pytest.raises(TokenError):
        decode_access_token(SETTINGS, token)


def test_only_the_configured_algorithm_is_accepted() -> None:
    other = jwt.encode(
        {"sub": "a@b.c", "exp": int(time.time()) + 60},
        "unit-secret-key-long-enough-for-hmac-sha512-signatures-0123456789",
        algorithm="HS512",
    )
    with pytest.raises(TokenError):
        decode_access_token(SETTINGS, other)
    unsigned = jwt.encode({"sub": "a@b.c", "exp": int(time.time()) + 60}, None, algorithm="none")
    with pytest.raises(TokenError):
        decode_access_token(SETTINGS, unsigned)


def test_wrong_key_and_missing_claims_are_rejected() -> None:
    forged = jwt.encode({"sub": "a@b.c", "exp": int(time.time()) + 60}, "x" * 64, algorithm="HS256")
    with pytest.raises(TokenError):
        decode_access_token(SETTINGS, forged)
    no_exp = jwt.encode(
        {"sub": "a@b.c"},
        "unit-secret-key-long-enough-for-hmac-sha512-signatures-0123456789",
        algorithm="HS256",
    )
    with pytest.raises(TokenError):
        decode_access_token(SETTINGS, no_exp)


def test_refresh_tokens_are_encrypted_not_signed() -> None:
    stored = encrypt_secret(SETTINGS, "google-refresh-token")
    assert "google-refresh-token" not in stored
    assert decrypt_secret(SETTINGS, stored) == "google-refresh-token"
    with pytest.raises(TokenError):
        decrypt_secret(Settings(secret_key="another" * 10), stored)
