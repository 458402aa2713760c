"""KeyedCache drops one key at a time and never stores what a drop overtook; ReadCaches
routes row notifications to their handlers and table names to the table caches."""

from __future__ import annotations

from eq_backend.readcache import ReadCaches


def _serving() -> ReadCaches:
    caches = ReadCaches()
    caches.set_enabled(True)
    return caches


def test_a_drop_removes_its_key_only() -> None:
    caches = _serving()
    cache = caches.add_keyed(max_entries=10)
    for key in (1, 2, 3):
        cache.put(caches.ticket(), key, f"v{key}")
    cache.drop(2)
    assert [cache.get(k) for k in (1, 2, 3)] == ["v1", None, "v3"]


def test_a_read_overtaken_by_a_drop_of_its_key_is_not_stored() -> None:
    caches = _serving()
    cache = caches.add_keyed(max_entries=10)
    ticket = caches.ticket()  # a read starts
    cache.drop(1)  # its key changes meanwhile
    cache.put(ticket, 1, "old")
    cache.put(ticket, 2, "unaffected")  # another key read at the same time is fine
    assert cache.get(1) is None
    assert cache.get(2) == "unaffected"
    cache.put(caches.ticket(), 1, "new")  # a read started after the drop is stored
    assert cache.get(1) == "new"


def test_drop_all_and_disabling_store_nothing_older() -> None:
    caches = _serving()
    cache = caches.add_keyed(max_entries=10)
    ticket = caches.ticket()
    cache.drop_all()
    cache.put(ticket, 1, "old")
    assert cache.get(1) is None
    caches.set_enabled(False)
    cache.put(caches.ticket(), 1, "while deaf")
    assert cache.get(1) is None
    assert len(cache) == 0


def test_remembering_too_many_drops_drops_everything() -> None:
    caches = _serving()
    cache = caches.add_keyed(max_entries=3)
    cache.put(caches.ticket(), "kept", 1)
    ticket = caches.ticket()
    for key in range(5):
        cache.drop(key)
    cache.put(ticket, "late", 1)  # cannot tell whether "late" was dropped: not stored
    assert cache.get("late") is None
    assert len(cache) <= 3


def test_notifications_go_to_row_handlers_and_table_caches() -> None:
    caches = _serving()
    caches.rows_announced = True  # the listener found the row triggers
    topics = caches.add({"topics"}, max_entries=4)
    heard: list[tuple[str, list[str] | None]] = []
    caches.on_rows("reactions", lambda keys: heard.append(("reactions", keys)))
    users: list[str] = []
    caches.on_table("users", lambda: users.append("users"))
    caches.heard("reactions:17/5,18/5")
    caches.heard("reactions:*")
    caches.heard("reactions")  # the table-name notification of the same change: covered
    caches.heard("users")
    caches.heard("some-marker")
    assert heard == [("reactions", ["17/5", "18/5"]), ("reactions", None)]
    assert users == ["users"]
    assert caches.last_heard == "some-marker"
    assert len(topics) == 0
    caches.wrote("reactions")  # a local write not tracked by row: every row of it
    assert heard[-1] == ("reactions", None)


def test_without_row_triggers_a_table_name_drops_every_row() -> None:
    caches = _serving()  # rows_announced stays False: an older schema
    heard: list[list[str] | None] = []
    caches.on_rows("comments", heard.append)
    caches.heard("comments")
    assert heard == [None]
