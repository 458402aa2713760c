"""The root invoke collection: every `inv` task of the project, gathered from its module.
Task modules import their heavy dependencies inside the tasks, so `inv --list` stays fast."""

from invoke.collection import Collection

from eq_deploy import backend_tasks, deploy_tasks
from eq_deploy.clusters import tasks as cluster_tasks

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
namespace.add_collection(cluster_tasks.namespace, name="cluster")
