"""Feed pages served from per-process caches that a write empties only where it reaches.

A page is put together from three caches, so that one write drops little:
- the page's order (which situations, and its pagination), per (page, limit, order):
  dropped when any situation is added, removed or edited;
- each item's JSON, shared by every viewer, per situation: dropped when that situation,
  its comments or its reactions change (or, table-wide, an author's name or picture);
- each viewer's own reaction, per (viewer, situation): dropped when that reaction changes.
A reaction of user 5 on situation 17 thus re-reads item 17 and user 5's reaction to it,
and nothing else. Drops come from this process's own writes (the services call the
`*_changed` methods once committed) and from PostgreSQL's row notifications for changes
made anywhere (eq_backend.readcache).

The answer is the whole response body, encoded: the cached pieces are joined, never
decoded and re-encoded.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

import msgspec

from eq_backend.coalesce import Coalescer
from eq_backend.domain.situations.schemas import Pagination
from eq_backend.readcache import KeyedCache, ReadCaches

MESSAGE = "Situations feed retrieved successfully"
HEAD = b'{"success":true,"message":' + msgspec.json.encode(MESSAGE) + b',"data":{"items":['

PAGE_ENTRIES = 4096
ITEM_ENTRIES = 20_000
REACTION_ENTRIES = 100_000


def reaction_tail(reaction: str | None) -> bytes:
    """What closes an item for a viewer: their reaction and the item's brace."""
    return b',"user_reaction":' + msgspec.json.encode(reaction) + b"}"


_NO_REACTION = reaction_tail(None)


@dataclass(frozen=True, slots=True)
class PageRow:
    """One item of a page as read from the database."""

    situation_id: int
    item: bytes  # the item's JSON without its closing brace
    reaction: str | None  # the viewer's (None for a visitor)


@dataclass(frozen=True, slots=True)
class _Order:
    ids: tuple[int, ...]
    tail: bytes  # closes the items list and carries the pagination


# A page read: (viewer, page, limit, ascending) -> its rows and the total of situations.
PageReader = Callable[[int | None, int, int, bool], Awaitable[tuple[list[PageRow], int]]]


def _tail(page: int, limit: int, total: int) -> bytes:
    pages = math.ceil(total / limit) if total else 0
    pagination = Pagination(
        page=page,
        limit=limit,
        total=total,
        pages=pages,
        has_next=page < pages,
        has_prev=page > 1,
    )
    return b'],"pagination":' + msgspec.json.encode(pagination) + b"}}"


class FeedPages:
    def __init__(self, caches: ReadCaches, read_page: PageReader) -> None:
        self._caches = caches
        self._read_page = read_page
        self._reads: Coalescer[bytes] = Coalescer()
        self._orders: KeyedCache[tuple[int, int, bool], _Order] = caches.add_keyed(PAGE_ENTRIES)
        self._items: KeyedCache[int, bytes] = caches.add_keyed(ITEM_ENTRIES)
        self._reactions: KeyedCache[tuple[int, int], bytes] = caches.add_keyed(REACTION_ENTRIES)
        caches.on_rows("situations", self._situations_heard)
        caches.on_rows("comments", self._comments_heard)
        caches.on_rows("reactions", self._reactions_heard)
        caches.on_table("users", self._items.drop_all)

    # Reading ---------------------------------------------------------------------------

    def cached(self, viewer_id: int | None, page: int, limit: int, ascending: bool) -> bytes | None:
        """The page's body when every piece of it is cached, else None."""
        order = self._orders.get((page, limit, ascending))
        if order is None:
            return None
        parts = []
        for situation_id in order.ids:
            item = self._items.get(situation_id)
            if item is None:
                return None
            tail = (
                _NO_REACTION
                if viewer_id is None
                else self._reactions.get((viewer_id, situation_id))
            )
            if tail is None:
                return None
            parts.append(item + tail)
        return HEAD + b",".join(parts) + order.tail

    async def body(self, viewer_id: int | None, page: int, limit: int, ascending: bool) -> bytes:
        """The page's body: cached, else read (concurrent identical misses share one read
        started after they arrived, eq_backend.coalesce) and cached piece by piece."""
        hit = self.cached(viewer_id, page, limit, ascending)
        if hit is not None:
            return hit
        key: Hashable = (viewer_id, page, limit, ascending)
        return await self._reads.run(key, lambda: self._read(viewer_id, page, limit, ascending))

    async def _read(self, viewer_id: int | None, page: int, limit: int, ascending: bool) -> bytes:
        ticket = self._caches.ticket()
        rows, total = await self._read_page(viewer_id, page, limit, ascending)
        order = _Order(tuple(r.situation_id for r in rows), _tail(page, limit, total))
        self._orders.put(ticket, (page, limit, ascending), order)
        parts = []
        for row in rows:
            tail = reaction_tail(row.reaction)
            self._items.put(ticket, row.situation_id, row.item)
            if viewer_id is not None:
                self._reactions.put(ticket, (viewer_id, row.situation_id), tail)
            parts.append(row.item + tail)
        return HEAD + b",".join(parts) + order.tail

    def holds(self, viewer_id: int | None, situation_id: int) -> tuple[bool, bool]:
        """Whether the item, and the viewer's reaction to it, are cached (for tests and
        debugging: what a write left in place)."""
        item = self._items.get(situation_id) is not None
        if viewer_id is None:
            return item, True
        return item, self._reactions.get((viewer_id, situation_id)) is not None

    # What changed ----------------------------------------------------------------------

    def situation_changed(self, situation_id: int | None) -> None:
        """Added, removed or edited (None: any number of them)."""
        self._orders.drop_all()
        if situation_id is None:
            self._items.drop_all()
        else:
            self._items.drop(situation_id)

    def comments_changed(self, situation_id: int) -> None:
        self._items.drop(situation_id)

    def reaction_changed(self, situation_id: int, user_id: int) -> None:
        self._items.drop(situation_id)
        self._reactions.drop((user_id, situation_id))

    def _situations_heard(self, keys: list[str] | None) -> None:
        if keys is None:
            self.situation_changed(None)
            return
        self._orders.drop_all()
        for key in keys:
            self._items.drop(int(key))

    def _comments_heard(self, keys: list[str] | None) -> None:
        if keys is None:
            self._items.drop_all()
            return
        for key in keys:
            self._items.drop(int(key))

    def _reactions_heard(self, keys: list[str] | None) -> None:
        if keys is None:
            self._items.drop_all()
            self._reactions.drop_all()
            return
        for key in keys:
            situation_id, _, user_id = key.partition("/")
            self.reaction_changed(int(situation_id), int(user_id))
