"""Situation payloads: SituationOut, FeedItem and the inputs."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from eq_backend.domain.users.schemas import UserBrief
from eq_backend.text_limits import ImageUrl, SituationContext, SituationQuestion
from eq_backend.types import DbInt


class SituationOut(msgspec.Struct):
    topic_id: int | None
    context: str
    question: str
    id: int
    user_id: int | None
    created_at: datetime


class ContributedOut(msgspec.Struct):
    id: int
    topic_id: int | None
    user_id: int | None
    image_url: str | None
    context: str
    question: str
    created_at: datetime


class Stats(msgspec.Struct):
    comments_count: int
    reactions_count: int
    upvotes_count: int
    downvotes_count: int


class ContributedItem(msgspec.Struct):
    """A situation as the feed shows it, without anything viewer-specific (the caller's
    own contributions list these)."""

    id: int
    topic_id: int | None
    user_id: int | None
    user: UserBrief | None
    image_url: str | None
    context: str
    question: str
    created_at: str
    stats: Stats


class FeedItem(ContributedItem):
    """A ContributedItem and the viewer's own reaction to it (null for a visitor)."""

    user_reaction: str | None


class Pagination(msgspec.Struct):
    page: int
    limit: int
    total: int
    pages: int
    has_next: bool
    has_prev: bool


class Feed(msgspec.Struct):
    items: list[FeedItem]
    pagination: Pagination


class SituationIn(msgspec.Struct):
    context: SituationContext
    question: SituationQuestion
    topic_id: DbInt | None = None


class ContributeIn(msgspec.Struct):
    context: SituationContext
    question: SituationQuestion
    topic_id: DbInt | None = None
    image_url: ImageUrl | None = None


class SituationUpdate(msgspec.Struct):
    context: SituationContext | msgspec.UnsetType = msgspec.UNSET
    question: SituationQuestion | msgspec.UnsetType = msgspec.UNSET
    image_url: ImageUrl | msgspec.UnsetType | None = msgspec.UNSET
    topic_id: DbInt | msgspec.UnsetType | None = msgspec.UNSET


ReactionType = Literal["upvote", "downvote"]


class ReactionIn(msgspec.Struct):
    reaction_type: ReactionType


class ReactionDeleteIn(msgspec.Struct):
    reaction_type: ReactionType | None = None


class ReactionOut(msgspec.Struct):
    situation_id: int
    user_id: int
    reaction_type: str
    id: int
    created_at: datetime
    user: UserBrief | None
