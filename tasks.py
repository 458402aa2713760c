"""Invoke entry point (`inv --list`). The tasks live in the eq_deploy package; this file only
exposes their collection so the library stays usable without invoke."""

from eq_deploy.tasks import namespace

__all__ = ["namespace"]
