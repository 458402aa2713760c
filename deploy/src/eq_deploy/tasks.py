"""The root invoke collection: every `inv` task of the project, gathered from its module.
Task modules import their heavy dependencies inside the tasks, so `inv --list` stays fast."""

from importlib import import_module
from typing import Any, cast

from invoke.collection import Collection
from invoke.tasks import Task

from eq_deploy import backend_tasks, deploy_tasks

namespace = Collection()
# backend_tasks imports `task` from invoke's top level, which mypy sees as untyped.
namespace.add_task(cast(Task[Any], backend_tasks.serve))
namespace.add_task(cast(Task[Any], backend_tasks.bench))
for _task in (
    deploy_tasks.build,
    deploy_tasks.render,
    deploy_tasks.deploy,
    deploy_tasks.rollback,
    deploy_tasks.history,
    deploy_tasks.status,
    deploy_tasks.diff,
    deploy_tasks.smoke,
):
    namespace.add_task(_task)

try:
    _cluster = import_module("eq_deploy.clusters.tasks")
except ModuleNotFoundError as exc:  # the cluster collection is still being written
    if exc.name != "eq_deploy.clusters.tasks":
        raise
else:
    namespace.add_collection(_cluster.namespace, name="cluster")
