"""Access tokens (JWT) and encryption at rest for OAuth refresh tokens."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import jwt
from cryptography.fernet import Fernet, InvalidToken

from eq_backend.settings import Settings


class TokenError(Exception):
    """The token is missing, malformed, expired or signed with something else."""


def create_access_token(settings: Settings, email: str, now: float | None = None) -> str:
    """A JWT with `sub` (email), `iat` and `exp` (now + ACCESS_TOKEN_EXPIRE_MINUTES)."""
    issued = int(now if now is not None else time.time())
    claims = {
        "sub": email,
        "iat": issued,
        "exp": issued + settings.access_token_expire_minutes * 60,
    }
    return jwt.encode(claims, settings.secret_key, algorithm=settings.algorithm)


def decode_access_token(settings: Settings, token: str) -> str:
    """The email in a valid token's `sub`; only the configured algorithm is accepted."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.secret_key,
            algorithms=[settings.algorithm],
            options={"require": ["sub", "exp"]},
        )
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc)) from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise TokenError("token has no subject")
    return subject


def sign_payload(settings: Settings, payload: dict[str, Any], ttl_seconds: int) -> str:
    """A short-lived signed value (used for the OAuth state cookie)."""
    now = int(time.time())
    return jwt.encode(
        {**payload, "iat": now, "exp": now + ttl_seconds, "aud": "eq-oauth-state"},
        settings.secret_key,
        algorithm="HS256",
    )


def verify_payload(settings: Settings, value: str) -> dict[str, Any]:
    """The payload of a value from `sign_payload`, or TokenError."""
    try:
        claims: dict[str, Any] = jwt.decode(
            value, settings.secret_key, algorithms=["HS256"], audience="eq-oauth-state"
        )
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc)) from None
    return claims


def _fernet(settings: Settings) -> Fernet:
    digest = hashlib.sha256(b"eq-backend refresh-token key\x00" + settings.secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(digest.digest()))


def encrypt_secret(settings: Settings, plaintext: str) -> str:
    """Encrypt (not merely sign) a secret for storage; key derived from SECRET_KEY."""
    return _fernet(settings).encrypt(plaintext.encode()).decode()


def decrypt_secret(settings: Settings, ciphertext: str) -> str:
    """Decrypt a value from `encrypt_secret`; TokenError if the key changed or it was altered."""
    try:
        return _fernet(settings).decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise TokenError("cannot decrypt stored secret") from None
