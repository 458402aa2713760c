"""History records: parsing, cap, rollback target choice, table format."""

from __future__ import annotations

import json

import pytest
from eq_deploy.errors import DeployError
from eq_deploy.history import (
    FAILED,
    HISTORY_CAP,
    HISTORY_KEY,
    SUCCEEDED,
    Entry,
    add_entry,
    format_history,
    pack_deployment,
    parse_history,
    rollback_target,
    serialize_history,
)


def entry(tag: str, result: str = SUCCEEDED, image: str | None = None) -> Entry:
    return Entry(
        revision=0,
        action="deploy",
        tag=tag,
        image=image or f"r/eq:{tag}@sha256:{'0' * 64}",
        digest="sha256:" + "0" * 64,
        git_sha=tag[4:],
        at="2025-01-01T00:00:00Z",
        by="me@host",
        result=result,
        alembic_head="bb9ea76cc252",
        deployment=pack_deployment({"kind": "Deployment", "metadata": {"name": tag}}),
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


def test_capped_at_ten_revisions_keep_counting() -> None:
    entries = build(*[f"sha-{i:07x}" for i in range(15)])
    assert len(entries) == HISTORY_CAP
    assert entries[0].revision == 15
    assert len(json.loads(serialize_history(entries)[HISTORY_KEY])) == HISTORY_CAP


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


def test_rollback_target_defaults_to_previous_successful_other_image() -> None:
    entries = build("sha-aaaaaaa", "sha-bbbbbbb")
    entries = add_entry(entries, entry("sha-ccccccc", result=FAILED))
    current = entries[1].image  # b serves (c failed and was rolled back)
    assert rollback_target(entries, current).tag == "sha-aaaaaaa"


def test_rollback_target_by_tag() -> None:
    entries = build("sha-aaaaaaa", "sha-bbbbbbb", "sha-ccccccc")
    assert rollback_target(entries, entries[0].image, "sha-aaaaaaa").tag == "sha-aaaaaaa"
    with pytest.raises(
        DeployError, match=r"--to sha-ddddddd: no successful deploy .*have: sha-ccccccc"
    ):
        rollback_target(entries, entries[0].image, "sha-ddddddd")


def test_rollback_target_refuses_when_nothing_to_go_back_to() -> None:
    entries = build("sha-aaaaaaa")
    with pytest.raises(DeployError, match="no previous successful deploy"):
        rollback_target(entries, entries[0].image)


def test_failed_deploys_are_never_rollback_targets() -> None:
    entries = add_entry(build("sha-aaaaaaa"), entry("sha-bbbbbbb", result=FAILED))
    with pytest.raises(DeployError, match="no successful deploy"):
        rollback_target(entries, entries[1].image, "sha-bbbbbbb")


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
        "REASON",
    ]
    assert lines[1].split()[:4] == ["2", "deploy", "sha-bbbbbbb", "failed"]
    assert lines[1].endswith("migration: Job failed")
    assert format_history([]) == "no deploys recorded"
