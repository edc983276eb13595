#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# On the control plane: prints the admin kubeconfig with the API server's external address.
# Its output is a secret: the resource that runs this has logging off and a secret stdout.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
: "${API_SERVER:?}"
sed "s#server: https://127.0.0.1:[0-9]*#server: $API_SERVER#" "$VMP_ETC/admin.kubeconfig"
