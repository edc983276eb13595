#!/usr/bin/env bash
# On the control plane: pushes an OCI archive copied to the host into the local registry.
# Registry credentials (when the registry has auth) arrive on stdin, never on the command line.
# Usage: SRC=/var/lib/vm-platform/images/pause.tar IMAGE=pause:3.10 REGISTRY=10.0.0.1:5000 TLS=true [AUTH=true] push-image.sh
set -euo pipefail
. /usr/local/lib/vm-platform/lib.sh
: "${SRC:?}" "${IMAGE:?}" "${REGISTRY:?}"
args=(--dest-tls-verify="${TLS:-true}")
[ "${TLS:-true}" = true ] && args+=(--dest-cert-dir=/etc/vm-platform/registry/client-certs)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
if [ "${AUTH:-false}" = true ]; then
  IFS= read -r user; IFS= read -r pass
  printf '{"auths":{"%s":{"auth":"%s"}}}' "$REGISTRY" "$(printf '%s:%s' "$user" "$pass" | base64 -w0)" > "$work/auth.json"
  chmod 600 "$work/auth.json"; args+=(--dest-authfile="$work/auth.json")
fi
wait_for 60 "registry $REGISTRY" curl -fsk -o /dev/null -w '%{http_code}' "http$([ "${TLS:-true}" = true ] && echo s)://$REGISTRY/v2/" -u "${user:-x}:${pass:-x}"
skopeo copy --quiet "${args[@]}" "oci-archive:$SRC" "docker://$REGISTRY/$IMAGE" >&2
skopeo inspect "${args[@]/--dest-/--}" --format '{{.Digest}}' "docker://$REGISTRY/$IMAGE"
