#!/usr/bin/env bash
# A real Kubernetes control plane for the kubernetes driver's tests, built once per version
# from the Go module proxy (nothing packages kube-apiserver here): kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl and etcd from one wrapper module, kwok (the
# simulated kubelets) from its own. tests/infra/kubernetes_cluster.py runs them per session.
set -euo pipefail
source "$INFRA/steps/common.sh"

directory="$CACHE/kubernetes-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION"
binaries=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok)
missing=0
for binary in "${binaries[@]}"; do [ -x "$directory/bin/$binary" ] || missing=1; done
if [ "$missing" = 0 ]; then
  note "cached (kubernetes $KUBERNETES_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION)"
  exit 0
fi

export GOPATH="$CACHE/go" GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" GOFLAGS=-mod=mod
work="$directory/src"
rm -rf "$work" && mkdir -p "$work/etcd" "$directory/bin"
start=$EPOCHREALTIME

# k8s.io/kubernetes names its staging modules at v0.0.0 with replaces into its own tree; a
# module that requires it has to point each one at its published release instead.
kube_mod="$(go mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
staging_release="v0.${KUBERNETES_VERSION#1.}"
{
  echo "module heliostat.test/kubernetes-testbed"
  echo
  echo "go 1.26.0"
  echo
  echo "require k8s.io/kubernetes v$KUBERNETES_VERSION"
  echo
  echo "replace ("
  sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 '"$staging_release"'#p' "$kube_mod"
  echo ")"
} >"$work/go.mod"
# etcd in a module of its own, so that its exact version is the one pinned.
printf 'module heliostat.test/etcd\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 v%s\n' "$ETCD_VERSION" >"$work/etcd/go.mod"
cat >"$work/etcd/main.go" <<'GO'
// etcd, from its server module: Debian's etcd is older than Kubernetes accepts.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
cat >"$work/tools.go" <<'GO'
//go:build tools

// The commands built from k8s.io/kubernetes, named so that go mod tidy keeps their packages.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
(cd "$work" && go mod tidy)
(cd "$work/etcd" && go mod tidy)
note "modules resolved ($(seconds_since "$start")s)"

start=$EPOCHREALTIME
minor="${KUBERNETES_VERSION#*.}"
minor="${minor%%.*}"
version="k8s.io/component-base/version"
version_flags="-X $version.gitVersion=v$KUBERNETES_VERSION -X $version.gitMajor=1 -X $version.gitMinor=$minor"
(cd "$work" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $version_flags" -o "$directory/bin/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
(cd "$work/etcd" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$directory/bin/etcd" .)
note "control plane built ($(seconds_since "$start")s)"

start=$EPOCHREALTIME
CGO_ENABLED=0 GOBIN="$directory/bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
# kwok's stage definitions (how simulated nodes and pods change state) ship in its module.
rm -rf "$directory/stages" && mkdir -p "$directory/stages"
kwok_module="$GOMODCACHE/sigs.k8s.io/kwok@v$KWOK_VERSION"
cp -r "$kwok_module/kustomize/stage/." "$directory/stages/" && chmod -R u+w "$directory/stages"
note "kwok built ($(seconds_since "$start")s)"
