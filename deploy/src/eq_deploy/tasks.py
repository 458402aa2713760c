"""The deploy tool's invoke collection, gathered from its task modules (the repository's
tasks.py adds the dev-only `cluster.*` tasks when eq_cluster is installed). Task modules
import their heavy dependencies inside the tasks, so `inv --list` stays fast."""

from invoke.collection import Collection

from eq_deploy import backend_tasks, deploy_tasks

namespace = Collection(
    backend_tasks.serve,
    backend_tasks.bench,
    deploy_tasks.build,
    deploy_tasks.render,
    deploy_tasks.deploy,
    deploy_tasks.rollback,
    deploy_tasks.history,
    deploy_tasks.status,
    deploy_tasks.diff,
    deploy_tasks.smoke,
    deploy_tasks.lock,
    deploy_tasks.destroy,
    deploy_tasks.logs,
)
