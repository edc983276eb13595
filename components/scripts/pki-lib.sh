# shellcheck shell=bash
# Certificate helpers (openssl). Sourced after lib.sh (which sets PKI) by pki-init.sh,
# sign-node.sh and node-keys.sh.
# Private keys are made on the host that uses them and never leave it: workers send CSRs, the
# control plane signs them with CA keys that exist only on the control plane.
# Validity in days, from the stack's settings: CA_DAYS for CAs, CERT_DAYS for leaf certificates.
CA_DAYS=${CA_DAYS:-3650}
CERT_DAYS=${CERT_DAYS:-365}
for v in CA_DAYS CERT_DAYS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { log "$v must be a whole number of days, got '${!v}'"; exit 1; }
done

# What this run made, for the one summary line a script logs (names, e.g. "apiserver").
NEW_KEYS=() NEW_CAS=() ISSUED=() KUBECONFIGS=()

# new_key FILE: an EC P-256 private key (mode 0600), made once.
new_key() {
  [ -s "$1" ] && return 0
  (umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2> /dev/null)
  NEW_KEYS+=("$(basename "$1" .key)")
}

# new_ca NAME CN: a self-signed CA, made once.
new_ca() {
  [ -s "$PKI/$1.crt" ] && return 0
  new_key "$PKI/$1.key"
  openssl req -x509 -new -key "$PKI/$1.key" -subj "/CN=$2" -days "$CA_DAYS" -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$PKI/$1.crt"
  NEW_CAS+=("$1")
}

# sign_csr CSR_FILE CA USAGE SANS SUBJECT > cert: USAGE is server, client or both;
# SUBJECT (RFC2253, e.g. CN=x,O=y) must equal the CSR's, so a node cannot ask for more.
sign_csr() {
  local csr=$1 ca=$2 usage=$3 sans=$4 want=$5 got eku ext
  got=$(openssl req -in "$csr" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
  [ "$got" = "$want" ] || { log "refusing CSR with subject '$got' (expected '$want')"; return 1; }
  openssl req -in "$csr" -noout -verify 2> /dev/null || { log "CSR signature invalid"; return 1; }
  case $usage in server) eku=serverAuth ;; client) eku=clientAuth ;; *) eku=serverAuth,clientAuth ;; esac
  ext=$(mktemp)
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n' "$eku" > "$ext"
  [ -z "$sans" ] || printf 'subjectAltName=%s\n' "$sans" >> "$ext"
  openssl x509 -req -in "$csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -set_serial "0x$(openssl rand -hex 16)" \
    -days "$CERT_DAYS" -sha256 -extfile "$ext" 2> /dev/null
  rm -f "$ext"
}

# subj_arg "CN=a,O=b" -> "/O=b/CN=a" for openssl req -subj
subj_arg() { echo "$1" | awk -F, '{s=""; for(i=NF;i>=1;i--) s=s"/"$i; print s}'; }

# issue NAME CA USAGE SANS SUBJECT: key + cert for this host, reissued only when the inputs
# (validity included) change. Stamps without "|days=" are from before validity was a setting,
# when it was always 365: writing 365 the same way keeps those certificates.
issue() {
  local name=$1 ca=$2 usage=$3 sans=$4 subject=$5 stamp="$2|$3|$4|$5" csr
  [ "$CERT_DAYS" = 365 ] || stamp+="|days=$CERT_DAYS"
  if [ -s "$PKI/$name.crt" ] && [ "$(cat "$PKI/$name.stamp" 2> /dev/null)" = "$stamp" ]; then return 0; fi
  new_key "$PKI/$name.key"
  csr=$(mktemp)
  openssl req -new -key "$PKI/$name.key" -subj "$(subj_arg "$subject")" -out "$csr"
  sign_csr "$csr" "$ca" "$usage" "$sans" "$subject" > "$PKI/$name.crt.tmp"
  mv -f "$PKI/$name.crt.tmp" "$PKI/$name.crt"
  echo "$stamp" > "$PKI/$name.stamp"
  rm -f "$csr"
  ISSUED+=("$name")
}

# kubeconfig FILE SERVER CERTNAME USER: a kubeconfig with the client cert embedded.
kubeconfig() {
  local file=$1 server=$2 cert=$3 user=$4
  cat << KCFG | write_file "$file" 0600 quiet
apiVersion: v1
kind: Config
clusters:
- name: vm-platform
  cluster:
    server: $server
    certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(b64 "$PKI/$cert.crt")
    client-key-data: $(b64 "$PKI/$cert.key")
contexts:
- name: $user@vm-platform
  context: {cluster: vm-platform, user: $user}
current-context: $user@vm-platform
KCFG
  if (( VMP_CHANGED )); then KUBECONFIGS+=("$(basename "$file" .kubeconfig)"); fi
}

# pki_report: one log line saying what this run made (nothing when it made nothing).
pki_report() {
  local parts=()
  (( ${#NEW_CAS[@]} )) && parts+=("made CA $(vmp_join ", " "${NEW_CAS[@]}") ($CA_DAYS days)")
  (( ${#ISSUED[@]} )) && parts+=("issued $(vmp_join ", " "${ISSUED[@]}") ($CERT_DAYS days)")
  (( ${#KUBECONFIGS[@]} )) && parts+=("wrote kubeconfig $(vmp_join ", " "${KUBECONFIGS[@]}")")
  (( ${#parts[@]} )) && log "$(vmp_join "; " "${parts[@]}")"
  return 0
}

# pki_expiry CERT_FILE...: the "expiry" line of a step's output (vmp_b64_emit): base64 of one
# "NAME NOT_AFTER" line per certificate (NAME: the file name without .crt; NOT_AFTER in UTC,
# ISO 8601), so the program can show every certificate's expiry as a stack output.
pki_expiry() {
  local f end
  for f in "$@"; do
    end=$(openssl x509 -in "$f" -noout -enddate)
    printf '%s %s\n' "$(basename "$f" .crt)" "$(date -u -d "${end#notAfter=}" +%FT%TZ)"
  done | vmp_b64_emit expiry
}
