#!/usr/bin/env bash
# Builds the local cluster's Go components from the Go module proxy, one at a time,
# into a cache keyed by version. Idempotent and resumable: a finished component is
# marked by a stamp file and skipped; a binary is moved into place only when complete.
#
#   deploy/cluster/build.sh [all|kubernetes|etcd|coredns|buildkit|buildx|crictl|pause]...
#   deploy/cluster/build.sh kind kubeadm    # only for the offline kind node image (not in `all`)
#   deploy/cluster/build.sh regen [component]...   # rewrite wrapper modules after a version bump
#   deploy/cluster/build.sh key <component>   # its cache key: the version, plus our source's hash
#
# Environment: EQ_CLUSTER_CACHE (default /var/cache/eq-cluster), EQ_BUILD_JOBS (go build -p).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${EQ_CLUSTER_CACHE:-/var/cache/eq-cluster}"
jobs="${EQ_BUILD_JOBS:-2}"
modules="$here/modules"
export CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false"
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

log() { printf '%s [build] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# The cache key: the version, plus the hash of our own source where we write what is built
# (pause entirely, CoreDNS's main with its plugin list).
key_of() {
  case "$1" in
    pause) sha256sum "$modules/pause/pause.go" | cut -c1-12 ;;
    coredns) echo "$COREDNS_VERSION-$(sha256sum "$modules/coredns/main.go" | cut -c1-8)" ;;
    *) version_of "$1" ;;
  esac
}

version_of() {
  case "$1" in
    kubernetes) echo "$KUBERNETES_VERSION" ;;
    etcd) echo "$ETCD_VERSION" ;;
    coredns) echo "$COREDNS_VERSION" ;;
    buildkit) echo "$BUILDKIT_VERSION" ;;
    buildx) echo "$BUILDX_VERSION" ;;
    crictl) echo "$CRICTL_VERSION" ;;
    pause) echo "" ;;  # our own source: no upstream version
    kubeadm) echo "$KUBERNETES_VERSION" ;;
    kind) echo "$KIND_VERSION" ;;
    *) echo "unknown component $1" >&2; return 1 ;;
  esac
}

# The commit an upstream release tag points at, as recorded by the module proxy.
upstream_commit() {
  (cd "$modules/$1" && go mod download -json "$2@$3" 2>/dev/null |
    python3 -c 'import json,sys; print((json.load(sys.stdin).get("Origin") or {}).get("Hash",""))') || true
}

# go build one main package of a wrapper module into $out/bin/<name> atomically.
gobuild() {
  local module="$1" name="$2" pkg="$3" ldflags="$4" tags="${5:-}"
  local dest="$out/bin/$name"
  [[ -x "$dest" ]] && { log "$name already built"; return 0; }
  log "go build $pkg -> $dest"
  # Checked explicitly: `set -e` does not apply inside a function called from `if !`.
  if ! (cd "$modules/$module" && go build -p "$jobs" -trimpath -tags "$tags" \
      -ldflags "-s -w $ldflags" -o "$dest.tmp" "$pkg"); then
    log "go build $pkg failed"
    return 1
  fi
  mv "$dest.tmp" "$dest"
}

kubernetes_ldflags() {
  local v="$KUBERNETES_VERSION" major minor commit flags
  major="$(echo "${v#v}" | cut -d. -f1)"; minor="$(echo "${v#v}" | cut -d. -f2)"
  commit="$(upstream_commit kubernetes k8s.io/kubernetes "$v")"
  # The same version variables upstream's hack/lib/version.sh stamps.
  flags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$v -X $pkg.gitCommit=$commit -X $pkg.gitTreeState=archive"
    flags+=" -X $pkg.buildDate=$build_date -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  done
  echo "$flags"
}

# Upstream's default build tags (hack/lib/golang.sh).
kubernetes_tags="selinux,notest,grpcnotrace"

build_kubernetes() {
  local flags
  flags="$(kubernetes_ldflags)"
  for bin in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
    gobuild kubernetes "$bin" "k8s.io/kubernetes/cmd/$bin" "$flags" "$kubernetes_tags" || return 1
  done
}

# kubeadm only goes into the kind node image (the local cluster does without it); its own
# component so that adding it does not invalidate the local cluster's cached kubernetes.
build_kubeadm() {
  gobuild kubernetes kubeadm k8s.io/kubernetes/cmd/kubeadm "$(kubernetes_ldflags)" "$kubernetes_tags" || return 1
}

# kind is one module without replace directives, so plain `go install` builds it.
build_kind() {
  log "go install sigs.k8s.io/kind@$KIND_VERSION -> $out/bin/kind"
  GOFLAGS=-buildvcs=false GOBIN="$out/bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kind@$KIND_VERSION" || return 1
}

build_etcd() {
  local commit flags
  commit="$(upstream_commit etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION")"
  flags="-X go.etcd.io/etcd/api/v3/version.GitSHA=${commit:0:7}"
  gobuild etcd etcd go.etcd.io/etcd/server/v3 "$flags" || return 1
  gobuild etcd etcdctl go.etcd.io/etcd/etcdctl/v3 "$flags" || return 1
}

build_coredns() {
  local commit
  commit="$(upstream_commit coredns github.com/coredns/coredns "$COREDNS_VERSION")"
  gobuild coredns coredns . "-X github.com/coredns/coredns/coremain.GitCommit=${commit:0:7}" || return 1
}

build_buildkit() {
  local commit flags
  commit="$(upstream_commit buildkit github.com/moby/buildkit "$BUILDKIT_VERSION")"
  flags="-X github.com/moby/buildkit/version.Version=$BUILDKIT_VERSION"
  flags+=" -X github.com/moby/buildkit/version.Revision=$commit"
  flags+=" -X github.com/moby/buildkit/version.Package=github.com/moby/buildkit"
  gobuild buildkit buildkitd github.com/moby/buildkit/cmd/buildkitd "$flags" "osusergo netgo static_build" || return 1
  gobuild buildkit buildctl github.com/moby/buildkit/cmd/buildctl "$flags" "osusergo netgo static_build" || return 1
}

build_buildx() {
  local commit flags
  commit="$(upstream_commit buildx github.com/docker/buildx "$BUILDX_VERSION")"
  flags="-X github.com/docker/buildx/version.Version=$BUILDX_VERSION"
  flags+=" -X github.com/docker/buildx/version.Revision=$commit"
  flags+=" -X github.com/docker/buildx/version.Package=github.com/docker/buildx"
  gobuild buildx docker-buildx github.com/docker/buildx/cmd/buildx "$flags" || return 1
}

build_crictl() {
  gobuild crictl crictl sigs.k8s.io/cri-tools/cmd/crictl \
    "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" || return 1
}

build_pause() {
  gobuild pause pause ./ "" "" || return 1
}

build_component() {
  local c="$1" v logf
  v="$(key_of "$c")"
  out="$cache/$c-$v"
  [[ -f "$out/.complete" ]] && { log "$c $v: cached in $out"; return 0; }
  mkdir -p "$out/bin" "$cache/logs"
  logf="$cache/logs/$c-$v.log"
  log "$c $v: building (log: $logf)"
  local start=$SECONDS
  if ! ("build_$c") >>"$logf" 2>&1; then
    log "FAILED: $c $v; see $logf"; tail -n 20 "$logf" >&2; return 1
  fi
  echo "$((SECONDS - start))" >"$out/.build-seconds"
  touch "$out/.complete"
  log "$c $v: done in $((SECONDS - start)) s"
}

# --- regen: rewrite a wrapper module from versions.env ---------------------------

# Copies an upstream go.mod's non-local replace and exclude directives, which a
# dependency's go.mod cannot apply, into the wrapper.
upstream_directives() {
  local gomod="$1"
  python3 - "$gomod" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
out = []
for kind in ("replace", "exclude"):
    for block in re.findall(rf"^{kind} \((.*?)^\)", text, re.S | re.M):
        out += [f"{kind} {l.strip()}" for l in block.splitlines() if l.strip() and not l.strip().startswith("//")]
    out += [l for l in re.findall(rf"^{kind} [^(].*$", text, re.M)]
# Local (../path) replaces only make sense inside upstream's repository.
print("\n".join(l for l in out if "=> ./" not in l and "=> ../" not in l))
PY
}

regen_module() {
  local c="$1" dir="$modules/$1" v gomod
  v="$(version_of "$c")"
  mkdir -p "$dir"
  case "$c" in
    kubernetes)
      gomod="$(cd /tmp && go mod download -json "k8s.io/kubernetes@$v" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
      {
        echo "// Wrapper that builds Kubernetes $v components (k8s.io/kubernetes itself"
        echo "// replaces its staging modules with local paths, so it cannot be installed)."
        echo "module eq.local/cluster/kubernetes"; echo; echo "go 1.24.0"; echo
        echo "require k8s.io/kubernetes $v"; echo
        for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl kubeadm; do
          echo "tool k8s.io/kubernetes/cmd/$b"
        done; echo
        local staging="v0.${v#v1.}"
        grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$gomod" |
          awk -v s="$staging" '{print "replace " $1 " => " $1 " " s}'
        upstream_directives "$gomod"
      } >"$dir/go.mod" ;;
    etcd)
      { echo "// Wrapper that builds etcd $v (its modules replace each other with local paths)."
        echo "module eq.local/cluster/etcd"; echo; echo "go 1.24.0"; echo
        for m in api/v3 client/pkg/v3 client/v3 pkg/v3 server/v3 etcdctl/v3 etcdutl/v3; do
          echo "require go.etcd.io/etcd/$m $v"; done
        echo "tool go.etcd.io/etcd/server/v3"; echo "tool go.etcd.io/etcd/etcdctl/v3"
      } >"$dir/go.mod" ;;
    coredns|buildkit|buildx|crictl)
      local mod pkgs
      case "$c" in
        coredns) mod=github.com/coredns/coredns; pkgs="" ;;  # main.go imports what it needs
        buildkit) mod=github.com/moby/buildkit; pkgs="$mod/cmd/buildkitd $mod/cmd/buildctl" ;;
        buildx) mod=github.com/docker/buildx; pkgs="$mod/cmd/buildx" ;;
        crictl) mod=sigs.k8s.io/cri-tools; pkgs="$mod/cmd/crictl" ;;
      esac
      gomod="$(cd /tmp && go mod download -json "$mod@$v" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
      { echo "// Wrapper that builds $mod $v with upstream's replace/exclude directives."
        echo "module eq.local/cluster/$c"; echo; echo "go 1.24.0"; echo
        echo "require $mod $v"
        for p in $pkgs; do echo "tool $p"; done
        upstream_directives "$gomod"
      } >"$dir/go.mod" ;;
    pause) return 0 ;;
  esac
  (cd "$dir" && rm -f go.sum && GOFLAGS=-mod=mod go mod tidy)
  log "regenerated $dir/go.mod"
}

main() {
  local cmd="${1:-all}"
  local all=(etcd kubernetes coredns buildkit buildx crictl pause)
  if [[ "$cmd" == key ]]; then key_of "$2"; return; fi  # for eq_cluster: one definition
  if [[ "$cmd" == regen ]]; then
    shift; local targets=("${@:-${all[@]}}")
    for c in "${targets[@]}"; do regen_module "$c"; done
    return 0
  fi
  local targets=("$@"); [[ $# -eq 0 || "$cmd" == all ]] && targets=("${all[@]}")
  local failed=()
  for c in "${targets[@]}"; do build_component "$c" || failed+=("$c"); done
  if ((${#failed[@]})); then log "failed components: ${failed[*]} (logs in $cache/logs)"; return 1; fi
  log "all built under $cache"
}

main "$@"
