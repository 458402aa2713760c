#!/bin/sh
# Entrypoint of the offline kind node image, before kind's own. Under `docker run
# --privileged` docker mounts /sys/fs/cgroup and its cgroup v1 hierarchies read-write; on a
# host whose capability bounding set lacks one (eq_cluster.kind_docker), kind's node runs with
# every privilege but that one instead, and docker mounts them read-only. systemd and the
# kubelet must write them, so they are remounted read-write; a no-op where they already are.
# Likewise /dev holds only docker's default devices then; the kubelet reads /dev/kmsg.
set -eu
findmnt -rn -o TARGET,OPTIONS | while read -r target options; do
    case "$target" in /sys/fs/cgroup | /sys/fs/cgroup/*) ;; *) continue ;; esac
    case ",$options," in *,ro,*) mount -o remount,bind,rw "$target" ;; esac
done
[ -e /dev/kmsg ] || mknod -m 0600 /dev/kmsg c 1 11
exec "$@"
