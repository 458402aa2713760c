"""The one error type the deploy tool raises for anything a person must fix."""


class DeployError(Exception):
    """A failure with a one-line message that names its culprit (a variable, file, flag,
    object or step). The invoke layer prints it as `error: <message>` without a traceback."""

    exit_code = 1

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        # Extra lines a person needs (logs, events); printed below the one-line message.
        self.detail = detail
        self.revision = 0  # the history entry recording this failure, once recorded
        self.rolled_back_to = ""  # the tag an automatic rollback restored

    def __str__(self) -> str:
        return self.message


class UsageError(DeployError):
    """Bad input: a flag, a tag, a `.env` value. Nothing was attempted."""

    exit_code = 2


class NeedsHuman(DeployError):
    """A failure the tool stopped short of repairing: an automatic rollback the schema rule
    forbids (a contract migration ran). What serves is the failed release; a person decides."""

    exit_code = 3


class LockHeld(DeployError):
    """Someone else is changing this namespace: the Lease is held, or a migration Job of
    another tag still runs. Nothing was changed; waiting (--lock-wait) may be all it takes."""

    exit_code = 4


class WaitTimeout(DeployError):
    """A wait reached its deadline without a terminal state (it may still get there)."""


class LockLost(DeployError):
    """This run lost its Lease (it stalled past it, or the lock was removed) and stopped
    before its next write: what it did so far stays; a person looks (inv status, history)."""

    exit_code = 3
