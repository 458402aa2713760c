"""Named steps, each with `apply` and `wait`, run by one runner that owns progress output,
timing and failure reporting. A command is a plan: a list of steps handed to `run_all`,
which counts them; nobody keeps a step total by hand."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from eq_deploy.errors import DeployError
from eq_deploy.interrupt import Interrupted, Interruption
from eq_deploy.progress import Reporter

Status = Callable[[str], None]


@dataclass
class Step:
    name: str
    apply: Callable[[], str | None]
    # Waits for what `apply` started; gets a callback for live status lines.
    wait: Callable[[Status], str | None] | None = None


@dataclass
class StepTiming:
    name: str
    apply_seconds: float
    wait_seconds: float
    ok: bool
    note: str = ""

    @property
    def seconds(self) -> float:
        return self.apply_seconds + self.wait_seconds


@dataclass
class Runner:
    reporter: Reporter
    total: int = 0
    timings: list[StepTiming] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    current: str = ""  # the step running (or that failed), for failure handling
    # Asked to stop by a signal: checked before each step, between its apply and its wait,
    # and at every poll of a wait (the API call under way always finishes).
    interruption: Interruption = field(default_factory=Interruption)
    # Checks run before each step, given its name (the lock's fence: still ours?).
    guards: list[Callable[[str], None]] = field(default_factory=list)

    def run_all(self, steps: Sequence[Step]) -> None:
        """Run `steps` in order, stopping at the first failure (re-raised). The total shown
        is what ran so far plus these: a plan decided after a failure (say, a rollback)
        replaces the steps that will no longer run."""
        self.total = len(self.timings) + len(steps)
        for step in steps:
            self.run(step)

    def run(self, step: Step) -> StepTiming:
        """Run one step; on failure report it (with its detail lines) and re-raise."""
        index = len(self.timings) + 1
        self.total = max(self.total, index)
        self.current = step.name
        t0 = time.monotonic()
        apply_s = wait_s = 0.0
        note: str | None = ""
        checkpoint = self.interruption.checkpoint
        try:
            checkpoint(step.name)
            for guard in self.guards:
                guard(step.name)
            note = step.apply()
            apply_s = time.monotonic() - t0
            if step.wait is not None:
                checkpoint(step.name)
                t1 = time.monotonic()
                prefix = f"[{index}/{self.total}] {step.name}: "

                def status(text: str) -> None:
                    checkpoint(step.name)
                    self.reporter.status(prefix + text)

                try:
                    note = step.wait(status) or note
                finally:
                    wait_s = time.monotonic() - t1
        except DeployError as exc:
            if not apply_s:
                apply_s = time.monotonic() - t0
            timing = StepTiming(step.name, apply_s, wait_s, ok=False, note=exc.message)
            self.timings.append(timing)
            self.reporter.step(
                index,
                self.total,
                step.name,
                timing.seconds,
                exc.message,
                ok=False,
                waited=wait_s,
                mark="INTERRUPTED" if isinstance(exc, Interrupted) else "FAILED",
            )
            if exc.detail:
                self.reporter.detail(exc.detail)
                exc.detail = ""  # shown once
            raise
        timing = StepTiming(step.name, apply_s, wait_s, ok=True, note=note or "")
        self.timings.append(timing)
        self.reporter.step(
            index, self.total, step.name, timing.seconds, note or "", waited=timing.wait_seconds
        )
        return timing

    def waited(self, *names: str) -> float:
        """Seconds spent waiting on Kubernetes in the named steps."""
        return sum(t.wait_seconds for t in self.timings if t.name in names)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started
