"""The root invoke collection: every `inv` task of the project, gathered from its module."""

from invoke import Collection

from eq_deploy import backend_tasks

namespace = Collection()
namespace.add_task(backend_tasks.serve)
namespace.add_task(backend_tasks.bench)
