"""User payloads. Only the caller's own payloads carry an email."""

from __future__ import annotations

import msgspec


class UserBrief(msgspec.Struct):
    id: int
    name: str | None
    picture: str | None


class MeOut(msgspec.Struct):
    id: int
    email: str
    name: str | None
    picture: str | None


class ProfileOut(msgspec.Struct):
    """`email` is present only in the caller's own profile (absent, not null, otherwise)."""

    id: int
    name: str | None
    picture: str | None
    bio: str | None
    email: str | msgspec.UnsetType | None = msgspec.UNSET
