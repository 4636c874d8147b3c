#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and etcd from the Go module proxy through the
# wrapper module in tools/k8sbin (go.mod + go.sum only), into a cache folder keyed by version.
# Rebuilds nothing that is already there. Prints the folder holding the binaries.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="$(cd "$here/k8sbin" && go list -m -f "{{.Version}}" k8s.io/kubernetes)"
minor="$(echo "$version" | cut -d. -f2)"
cache="${OPENAI_OPERATOR_CACHE:-$HOME/.cache/openai-operator}"
bin="$cache/k8s-$version"
mkdir -p "$bin"
ld="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
cd "$here/k8sbin"
build() {  # build <output name> <package> [ldflags]
  if [ ! -x "$bin/$1" ]; then
    echo "building $1 $version (cold builds take minutes)" >&2
    CGO_ENABLED=0 go build -trimpath -ldflags "${3:-}" -o "$bin/$1.tmp" "$2"
    mv "$bin/$1.tmp" "$bin/$1"
  fi
}
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$ld"
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$ld"
build etcd go.etcd.io/etcd/server/v3 "-s -w"
echo "$bin"
