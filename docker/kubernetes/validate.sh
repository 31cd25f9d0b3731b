#!/usr/bin/env bash
# Offline validation of the Kubernetes manifests (no cluster needed). From the repo root:
#   bash docker/kubernetes/validate.sh
# yamllint on every file; then each kustomization is rendered with `kubectl kustomize`
# (kustomize built into kubectl) and every rendered resource, plus the example Secret, is
# checked against the Kubernetes 1.37 schemas (strict: unknown fields fail) by
# kubernetes-validate. The ServiceMonitor is a CRD with no bundled schema: it gets a warning.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
bin() { if [[ -x ".venv/bin/$1" ]]; then printf '%s\n' ".venv/bin/$1"; else command -v "$1"; fi; }

yamllint="$(bin yamllint)" || { echo "error: yamllint missing (pip install yamllint)" >&2; exit 2; }
validate="$(bin kubernetes-validate)" || {
    echo "error: kubernetes-validate missing (pip install kubernetes-validate)" >&2
    exit 2
}
manifests=docker/kubernetes
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "== yamllint $manifests"
"$yamllint" --strict -c "$manifests/.yamllint.yaml" "$manifests"

echo "== kubernetes-validate (schemas of Kubernetes 1.37, strict)"
"$validate" --strict --quiet "$manifests/base/secret.example.yaml"
if kubectl="$(command -v kubectl)"; then
    for overlay in "$manifests/base" "$manifests/overlays/production"; do
        rendered="$tmp/$(echo "$overlay" | tr / _).yaml"
        "$kubectl" kustomize "$overlay" > "$rendered"
        echo "-- $overlay: $(grep -c '^kind:' "$rendered") resources rendered"
        "$validate" --strict --quiet "$rendered"
    done
else
    echo "kubectl not found: validating the base files one by one (patches are not resources)"
    for file in "$manifests"/base/*.yaml; do
        [[ "$(basename "$file")" == kustomization.yaml ]] && continue
        "$validate" --strict --quiet "$file"
    done
fi
echo "kubernetes manifests: OK"
