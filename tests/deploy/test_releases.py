"""The schema rule and the migration report, as pure functions."""

from __future__ import annotations

from eq_deploy.releases import merged_chain, parse_migration_log, schema_verdict

CHAIN = {
    "r1": ["", "expand"],
    "r2": ["r1", "expand"],
    "r3": ["r2", "contract"],
    "r4": ["r3", "expand"],
}


def test_same_revision_is_fine() -> None:
    verdict = schema_verdict("r2", "r2", CHAIN)
    assert verdict.ok
    assert verdict.path == ()


def test_only_expands_between_is_fine() -> None:
    verdict = schema_verdict("r2", "r1", CHAIN)
    assert verdict.ok
    assert verdict.path == (("r2", "expand"),)


def test_a_contract_on_the_way_blocks_and_is_named() -> None:
    verdict = schema_verdict("r4", "r1", CHAIN)
    assert not verdict.ok
    assert verdict.blocking == "r3"
    assert verdict.path == (("r4", "expand"), ("r3", "contract"))
    message = verdict.explain("sha-abcd")
    assert message.startswith("revision r3 is a contract migration")
    assert "roll forward" in message
    assert "inv rollback --downgrade" in message
    assert "\n" not in message


def test_an_unknown_revision_blocks() -> None:
    verdict = schema_verdict("r9", "r1", CHAIN)
    assert (verdict.ok, verdict.unknown) == (False, "r9")
    assert "does not know whether revision r9" in verdict.explain("sha-abcd")
    # A target that is not below the database's revision is never reached.
    above = schema_verdict("r2", "r4", CHAIN)
    assert (above.ok, above.unknown) == (False, "r2")


def test_chains_of_several_builds_are_merged() -> None:
    older = {"r1": ["", "expand"]}
    newer = {"r1": ["", "expand"], "r2": ["r1", "contract"]}
    assert merged_chain([older, newer]) == newer


def test_parse_migration_log() -> None:
    log = (
        'alembic chain: {"r2":["r1","expand"],"r1":[null,"expand"]}\n'
        "alembic before: r1\nINFO something\nalembic head: r2\n"
    )
    report = parse_migration_log(log)
    assert report is not None
    assert (report.before, report.head) == ("r1", "r2")
    assert report.chain == {"r2": ["r1", "expand"], "r1": ["", "expand"]}
    assert parse_migration_log("migrations ok\n") is None
    legacy = parse_migration_log("alembic head: r2\n")  # a build from before the chain
    assert legacy is not None
    assert (legacy.head, legacy.chain) == ("r2", None)
