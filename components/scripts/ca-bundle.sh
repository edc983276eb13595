#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# On the control plane: prints the CA certificates (public) as name=base64 lines for the workers
# and the registry's clients. Its own step, apart from the PKI step: a renewal runs that one
# again, and what reads the CAs must not look changed in the preview when they are not.
# Usage: CA_DAYS=3650 ca-bundle.sh   (CA_DAYS: a new CA validity prints the bundle again)
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
for name in ca etcd-ca; do
  [ -s "$PKI/$name.crt" ] || { log "no $PKI/$name.crt: the PKI step has not run"; exit 1; }
done
vmp_b64_emit ca "$PKI/ca.crt"
vmp_b64_emit etcd_ca "$PKI/etcd-ca.crt"
