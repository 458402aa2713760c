"""History records: parsing, retention, rollback target choice, settings changes, table."""

from __future__ import annotations

import json

import pytest
from eq_deploy.errors import DeployError
from eq_deploy.history import (
    FAILED,
    HISTORY_KEY,
    KEEP_OTHER,
    KEEP_SUCCEEDED,
    SUCCEEDED,
    Entry,
    add_entry,
    format_changes,
    format_history,
    pack_deployment,
    parse_history,
    rollback_target,
    serialize_history,
    settings_changes,
)


def entry(
    tag: str,
    result: str = SUCCEEDED,
    image: str | None = None,
    *,
    settings: dict[str, str] | None = None,
    action: str = "deploy",
) -> Entry:
    settings = settings if settings is not None else {"SECRET_KEY": "f1", "LOG_LEVEL": "f2"}
    suffix = str(abs(hash(tuple(sorted(settings.items())))) % 10**10)
    return Entry(
        revision=0,
        action=action,
        tag=tag,
        image=image or f"r/eq:{tag}@sha256:{'0' * 64}",
        digest="sha256:" + "0" * 64,
        git_sha=tag[4:],
        at="2025-01-01T00:00:00Z",
        by="me@host",
        result=result,
        alembic_head="bb9ea76cc252",
        deployment=pack_deployment({"kind": "Deployment", "metadata": {"name": tag}}),
        config_map=f"eq-backend-config-{suffix}",
        secret=f"eq-backend-secrets-{suffix}",
        settings=dict(settings),
    )


def build(*tags: str) -> list[Entry]:
    entries: list[Entry] = []
    for tag in tags:
        entries = add_entry(entries, entry(tag))
    return entries


def test_round_trip_and_newest_first() -> None:
    entries = build("sha-aaaaaaa", "sha-bbbbbbb")
    parsed = parse_history(serialize_history(entries))
    assert [e.tag for e in parsed] == ["sha-bbbbbbb", "sha-aaaaaaa"]
    assert [e.revision for e in parsed] == [2, 1]
    assert parsed[0].deployment_object() == {
        "kind": "Deployment",
        "metadata": {"name": "sha-bbbbbbb"},
    }


def test_keeps_ten_successes_revisions_keep_counting() -> None:
    entries = build(*[f"sha-{i:07x}" for i in range(15)])
    assert len(entries) == KEEP_SUCCEEDED
    assert entries[0].revision == 15
    assert len(json.loads(serialize_history(entries)[HISTORY_KEY])) == KEEP_SUCCEEDED


def test_failures_never_evict_the_successes() -> None:
    entries = build("sha-aaaaaaa", "sha-bbbbbbb")
    for i in range(12):
        entries = add_entry(entries, entry(f"sha-fa11{i:03x}", result=FAILED))
    assert [e.tag for e in entries if e.result == SUCCEEDED] == ["sha-bbbbbbb", "sha-aaaaaaa"]
    assert sum(e.result == FAILED for e in entries) == KEEP_OTHER
    assert entries[0].tag == "sha-fa1100b"  # the newest failures are the ones kept
    parsed = parse_history(serialize_history(entries))
    assert rollback_target(parsed, ("live-image", "", "")).tag == "sha-bbbbbbb"


def test_the_newest_success_survives_any_number_of_entries() -> None:
    entries = build(*[f"sha-{i:07x}" for i in range(30)])
    for i in range(30):
        entries = add_entry(entries, entry(f"sha-fa11{i:03x}", result=FAILED))
    assert next(e for e in entries if e.result == SUCCEEDED).tag == f"sha-{29:07x}"


def test_missing_or_empty_history() -> None:
    assert parse_history(None) == []
    assert parse_history({}) == []


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    raw = json.loads(serialize_history(build("sha-aaaaaaa"))[HISTORY_KEY])
    raw[0]["added_later"] = 1
    assert parse_history({HISTORY_KEY: json.dumps(raw)})[0].tag == "sha-aaaaaaa"


@pytest.mark.parametrize("text", ["{", '{"a": 1}', '[{"tag": "x"}]'])
def test_corrupt_history_is_named(text: str) -> None:
    with pytest.raises(DeployError, match="eq-deploy-history: unreadable history"):
        parse_history({HISTORY_KEY: text})


def test_rollback_target_defaults_to_previous_successful_release() -> None:
    entries = build("sha-aaaaaaa", "sha-bbbbbbb")
    entries = add_entry(entries, entry("sha-ccccccc", result=FAILED))
    live = entries[1].release  # b serves (c failed and was rolled back)
    assert rollback_target(entries, live).tag == "sha-aaaaaaa"


def test_a_settings_only_change_is_a_release_to_go_back_to() -> None:
    entries = build("sha-aaaaaaa")
    entries = add_entry(entries, entry("sha-aaaaaaa", settings={"SECRET_KEY": "f9"}))
    target = rollback_target(entries, entries[0].release)
    assert (target.revision, target.settings["SECRET_KEY"]) == (1, "f1")


def test_after_rolling_back_v3_to_v2_the_next_rollback_goes_to_v1() -> None:
    entries = build("sha-1111111", "sha-2222222", "sha-3333333")
    back = entry("sha-2222222", action="rollback")
    back.rolled_back_from = entries[0].revision  # v3 served
    entries = add_entry(entries, back)
    assert rollback_target(entries, back.release).tag == "sha-1111111"


def test_rollback_target_by_tag() -> None:
    entries = build("sha-aaaaaaa", "sha-bbbbbbb", "sha-ccccccc")
    assert rollback_target(entries, entries[0].release, "sha-aaaaaaa").tag == "sha-aaaaaaa"
    with pytest.raises(
        DeployError, match=r"--to sha-ddddddd: no successful deploy .*have: sha-ccccccc"
    ):
        rollback_target(entries, entries[0].release, "sha-ddddddd")


def test_rollback_target_refuses_when_nothing_to_go_back_to() -> None:
    entries = build("sha-aaaaaaa")
    with pytest.raises(DeployError, match="no previous successful deploy"):
        rollback_target(entries, entries[0].release)


def test_failed_deploys_are_never_rollback_targets() -> None:
    entries = add_entry(build("sha-aaaaaaa"), entry("sha-bbbbbbb", result=FAILED))
    with pytest.raises(DeployError, match="no successful deploy"):
        rollback_target(entries, entries[1].release, "sha-bbbbbbb")


def test_settings_changes_name_keys_never_values() -> None:
    old = entry("sha-aaaaaaa", settings={"SECRET_KEY": "f1", "LOG_LEVEL": "f2", "GONE": "f3"})
    new = entry("sha-bbbbbbb", settings={"SECRET_KEY": "f9", "LOG_LEVEL": "f2", "NEW": "f4"})
    assert settings_changes(old, new) == ["- GONE", "+ NEW", "~ SECRET_KEY"]
    entries = add_entry(add_entry([], old), new)
    text = format_changes(entries, "1", "sha-bbbbbbb")
    assert text.splitlines()[:4] == [
        "settings of revision 1 (sha-aaaaaaa) → 2 (sha-bbbbbbb):",
        "  - GONE (REDACTED)",
        "  + NEW (REDACTED)",
        "  ~ SECRET_KEY (REDACTED)",
    ]
    assert "f9" not in text
    with pytest.raises(DeployError, match="'9': no history entry"):
        format_changes(entries, "1", "9")


def test_format_history_table() -> None:
    entries = add_entry(build("sha-aaaaaaa"), entry("sha-bbbbbbb", result=FAILED))
    entries[0].reason = "migration: Job failed"
    lines = format_history(entries).splitlines()
    assert lines[0].split() == [
        "REV",
        "ACTION",
        "TAG",
        "RESULT",
        "AT",
        "BY",
        "ALEMBIC",
        "DIGEST",
        "SETTINGS",
        "REASON",
    ]
    assert lines[1].split()[:4] == ["2", "deploy", "sha-bbbbbbb", "failed"]
    assert lines[1].endswith("migration: Job failed")
    assert format_history([]) == "no deploys recorded"
