# Certificate helpers (openssl). Sourced by pki-init.sh, sign-node.sh and node-keys.sh.
# Private keys are made on the host that uses them and never leave it: workers send CSRs, the
# control plane signs them with CA keys that exist only on the control plane.
PKI=/etc/vm-platform/pki

new_key() { [ -s "$1" ] || { (umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null); }; }

# new_ca NAME CN: a self-signed CA, made once.
new_ca() {
  [ -s "$PKI/$1.crt" ] && return 0
  new_key "$PKI/$1.key"
  openssl req -x509 -new -key "$PKI/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$PKI/$1.crt"
}

# sign_csr CSR_FILE CA USAGE SANS SUBJECT > cert: USAGE is server, client or both;
# SUBJECT (RFC2253, e.g. CN=x,O=y) must equal the CSR's, so a node cannot ask for more.
sign_csr() {
  local csr=$1 ca=$2 usage=$3 sans=$4 want=$5 got eku
  got=$(openssl req -in "$csr" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
  [ "$got" = "$want" ] || { echo "refusing CSR with subject '$got' (expected '$want')" >&2; return 1; }
  openssl req -in "$csr" -noout -verify 2>/dev/null || { echo "CSR signature invalid" >&2; return 1; }
  case $usage in server) eku=serverAuth ;; client) eku=clientAuth ;; *) eku=serverAuth,clientAuth ;; esac
  local ext
  ext=$(mktemp); printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n' "$eku" > "$ext"
  [ -z "$sans" ] || printf 'subjectAltName=%s\n' "$sans" >> "$ext"
  openssl x509 -req -in "$csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -set_serial "0x$(openssl rand -hex 16)" \
    -days 365 -sha256 -extfile "$ext" 2>/dev/null
  rm -f "$ext"
}

# subject_of "CN=a,O=b" -> "/O=b/CN=a" for openssl req -subj
subj_arg() { echo "$1" | awk -F, '{s=""; for(i=NF;i>=1;i--) s=s"/"$i; print s}'; }

# issue NAME CA USAGE SANS SUBJECT: key + cert for this host, reissued only when the inputs change.
issue() {
  local name=$1 ca=$2 usage=$3 sans=$4 subject=$5 stamp="$2|$3|$4|$5"
  if [ -s "$PKI/$name.crt" ] && [ "$(cat "$PKI/$name.stamp" 2>/dev/null)" = "$stamp" ]; then return 0; fi
  new_key "$PKI/$name.key"
  local csr; csr=$(mktemp)
  openssl req -new -key "$PKI/$name.key" -subj "$(subj_arg "$subject")" -out "$csr"
  sign_csr "$csr" "$ca" "$usage" "$sans" "$subject" > "$PKI/$name.crt.tmp"
  mv -f "$PKI/$name.crt.tmp" "$PKI/$name.crt"
  echo "$stamp" > "$PKI/$name.stamp"
  rm -f "$csr"
}

# kubeconfig FILE SERVER CERTNAME USER: a kubeconfig with the client cert embedded.
kubeconfig() {
  local file=$1 server=$2 cert=$3 user=$4
  cat <<KCFG | write_file "$file" 0600 >/dev/null
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
}
