"""`inv cluster.up|down|status|build`: flags in, library calls out (imports stay lazy)."""

from __future__ import annotations

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task


def _provider(name: str | None):  # type: ignore[no-untyped-def]
    from eq_cluster import select_provider

    return select_provider(name or None)


@task(help={"provider": "local, kind or current (default: $EQ_CLUSTER, else kind if usable)"})
def up(c: Context, provider: str = "") -> None:
    """Bring up a Kubernetes cluster and make its context current."""
    cluster = _provider(provider)
    cluster.up()
    print(cluster.status().render())


@task(help={"provider": "local, kind or current (default: $EQ_CLUSTER, else kind if usable)"})
def down(c: Context, provider: str = "") -> None:
    """Stop the cluster and remove what it left on this machine."""
    cluster = _provider(provider)
    cluster.down()
    leftovers = cluster.leftovers()
    if leftovers:
        raise SystemExit("left behind:\n  " + "\n  ".join(leftovers))


@task(help={"provider": "local, kind or current (default: $EQ_CLUSTER, else kind if usable)"})
def status(c: Context, provider: str = "") -> None:
    """Show whether the cluster runs, component by component."""
    report = _provider(provider).status()
    print(report.render())
    if not report.running:
        raise SystemExit(1)


@task
def build(c: Context) -> None:
    """Build what `cluster.up` needs into the cache: the local cluster's components from
    source and the Python base image's root file systems (no-op when cached)."""
    from eq_cluster.local.cluster import LocalCluster

    LocalCluster().build()


namespace = Collection("cluster", up, down, status, build)
