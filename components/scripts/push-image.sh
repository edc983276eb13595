#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# On the control plane: pushes an OCI archive copied to the host into the local registry and
# prints the pushed manifest's digest.
# Registry credentials (when the registry has auth) arrive on stdin (user line, password line)
# and go only into a 0600 auth file for skopeo: never onto a command line, where every user of
# the host could read them in the process list. The readiness probe needs none (401 = up).
# Usage: SRC=/var/lib/vm-platform/images/pause.tar IMAGE=pause:3.10 REGISTRY=10.0.0.1:5000 TLS=true [AUTH=true] push-image.sh
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
: "${SRC:?}" "${IMAGE:?}" "${REGISTRY:?}"
tls=${TLS:-true}
args=(--dest-tls-verify="$tls")
[ "$tls" = true ] && args+=(--dest-cert-dir="$VMP_ETC/registry/client-certs")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ "${AUTH:-false}" = true ]; then
  IFS= read -r user
  IFS= read -r pass
  (umask 077; printf '{"auths":{"%s":{"auth":"%s"}}}' "$REGISTRY" "$(printf '%s:%s' "$user" "$pass" | base64 -w0)" > "$work/auth.json")
  unset pass
  args+=(--dest-authfile="$work/auth.json")
fi
scheme=http
[ "$tls" = true ] && scheme=https
registry_up() {
  local code
  code=$(curl -sk -o /dev/null -w '%{http_code}' "$scheme://$REGISTRY/v2/") || return 1
  [ "$code" = 200 ] || [ "$code" = 401 ]
}
wait_for 60 "registry $REGISTRY" registry_up
skopeo copy --quiet "${args[@]}" "oci-archive:$SRC" "docker://$REGISTRY/$IMAGE" >&2
digest=$(skopeo inspect "${args[@]/--dest-/--}" --format '{{.Digest}}' "docker://$REGISTRY/$IMAGE")
log "pushed $IMAGE ($digest)"
echo "$digest"
