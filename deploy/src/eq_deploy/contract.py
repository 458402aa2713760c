"""What CI reads: exit codes and the `--json` result of deploy and rollback.

| code | result      | meaning                                                         |
| ---- | ----------- | --------------------------------------------------------------- |
| 0    | succeeded   | done                                                            |
| 1    | failed      | failed; what served still serves (rolled back, or untouched)    |
| 2    | usage_error | bad input (flag, tag, .env, environment/cluster mismatch)       |
| 3    | needs_human | stopped short of repairing: a contract migration, a lost lock   |
| 4    | lock_held   | another deploy or a running migration holds the namespace       |
| 130  | interrupted | SIGINT/SIGTERM; recorded, rolled back when the rollout started  |

`inv diff --exit-code` answers 0 (no change) or 2 (changes), like the issue asked; an error
there is told apart by its `error:` line (and `--json`'s "error").
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from eq_deploy.errors import DeployError
from eq_deploy.session import Outcome

RESULTS = {
    0: "succeeded",
    1: "failed",
    2: "usage_error",
    3: "needs_human",
    4: "lock_held",
    130: "interrupted",
}


@dataclass
class Contract:
    """Filled by the command; printed as one JSON object on stdout when it ends."""

    command: str
    tag: str = ""
    outcome: Outcome | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def result(self, error: DeployError | None) -> dict[str, Any]:
        code = error.exit_code if error is not None else 0
        out: dict[str, Any] = {
            "command": self.command,
            "exit_code": code,
            "result": RESULTS.get(code, "failed"),
            "error": error.message if error is not None else None,
            "tag": self.tag,
            "revision": error.revision if error is not None else 0,
            "rolled_back_to": error.rolled_back_to if error is not None else "",
        }
        if self.outcome is not None:
            outcome = asdict(self.outcome)
            outcome.pop("note", None)
            out.update(outcome)
            out["seconds"] = round(self.outcome.seconds, 2)
            out["waited"] = {k: round(v, 2) for k, v in self.outcome.waited.items()}
        out.update(self.extra)
        return out


@contextmanager
def json_result(command: str, enabled: bool, *, tag: str = "") -> Iterator[Contract]:
    """Print the contract's JSON on stdout as the command ends, however it ends (an error
    is re-raised for the one-line `error:` and the exit code)."""
    contract = Contract(command, tag)
    try:
        yield contract
    except DeployError as exc:
        if enabled:
            _print(contract.result(exc))
        raise
    except KeyboardInterrupt:
        if enabled:
            from eq_deploy.interrupt import Interrupted

            _print(contract.result(Interrupted("interrupted", signal_name="SIGINT", step="")))
        raise
    if enabled:
        _print(contract.result(None))


def _print(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    sys.stdout.flush()
