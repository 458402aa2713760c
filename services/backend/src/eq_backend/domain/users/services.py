"""User reads and the OAuth upsert."""

from __future__ import annotations

import msgspec
from sqlalchemy import func, insert, select, update

from eq_backend.db.engine import Database
from eq_backend.db.tables import users
from eq_backend.domain.users.schemas import MeOut, ProfileOut, UserBrief
from eq_backend.errors import NotFound

_BRIEF = select(users.c.id, users.c.name, users.c.picture)


def _like_pattern(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class UserService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def me(self, user_id: int) -> MeOut:
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    select(users.c.id, users.c.email, users.c.name, users.c.picture).where(
                        users.c.id == user_id
                    )
                )
            ).first()
        if row is None:
            raise NotFound("User not found")
        return MeOut(id=row.id, email=row.email, name=row.name, picture=row.picture)

    async def profile(self, user_id: int, caller_id: int) -> ProfileOut:
        """A user's profile; its email only when it is the caller's own."""
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        users.c.id, users.c.name, users.c.email, users.c.picture, users.c.bio
                    ).where(users.c.id == user_id)
                )
            ).first()
        if row is None:
            raise NotFound("User not found")
        return ProfileOut(
            id=row.id,
            name=row.name,
            picture=row.picture,
            bio=row.bio,
            email=row.email if user_id == caller_id else msgspec.UNSET,
        )

    async def search(self, text: str | None, offset: int, limit: int) -> list[UserBrief]:
        """Users by case-insensitive name substring (all users without text), by id."""
        stmt = _BRIEF.order_by(users.c.id).offset(offset).limit(limit)
        if text:
            stmt = stmt.where(func.lower(users.c.name).like(_like_pattern(text), escape="\\"))
        async with self.db.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [UserBrief(id=r.id, name=r.name, picture=r.picture) for r in rows]

    async def exists(self, user_id: int) -> bool:
        async with self.db.connect() as conn:
            found = (await conn.execute(select(users.c.id).where(users.c.id == user_id))).first()
        return found is not None

    async def upsert_google_user(
        self,
        *,
        google_id: str,
        email: str,
        name: str | None,
        picture: str | None,
        encrypted_refresh_token: str | None,
    ) -> int:
        """Create the user by email, or update name/picture (and the refresh token if a new
        one came). Returns the user id."""
        async with self.db.begin() as conn:
            row = (
                await conn.execute(
                    select(users.c.id, users.c.name, users.c.picture, users.c.google_id).where(
                        users.c.email == email
                    )
                )
            ).first()
            if row is None:
                return int(
                    (
                        await conn.execute(
                            insert(users)
                            .values(
                                google_id=google_id,
                                email=email,
                                name=name,
                                picture=picture,
                                encrypted_refresh_token=encrypted_refresh_token,
                            )
                            .returning(users.c.id)
                        )
                    ).scalar_one()
                )
            changes: dict[str, object] = {}
            if name and name != row.name:
                changes["name"] = name
            if picture and picture != row.picture:
                changes["picture"] = picture
            if row.google_id is None:
                changes["google_id"] = google_id
            if encrypted_refresh_token:
                changes["encrypted_refresh_token"] = encrypted_refresh_token
            if changes:
                changes["updated_at"] = func.now()
                await conn.execute(update(users).where(users.c.id == row.id).values(**changes))
            return int(row.id)
