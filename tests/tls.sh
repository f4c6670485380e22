#!/bin/bash
# The TLS listener ([tls] listen) with certificates made here: a test CA,
# a server certificate for 127.0.0.1/localhost, client certificates with
# CN=webtier (submit_cn), CN=copees-admin (admin_cn) and CN=intruder
# (neither), and a CN=webtier certificate from another CA.  The submit
# certificate uploads a PDF (201), the admin one lists jobs, the intruder
# gets 403; no certificate, a foreign CA or TLS 1.1 fail the handshake
# with no HTTP answer.  The listener binds 127.0.0.1 only, on a free port.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || bail "openssl not installed"
command -v python3 >/dev/null || bail "python3 not installed"

# ------------------------------------------------------------ certificates
P=$T/pki
mkdir -p "$P"
( cd "$P" || exit 1
  ec() { echo -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes; }
  # shellcheck disable=SC2046
  openssl req -x509 $(ec) -days 90 -subj '/CN=copees test CA' -keyout ca.key -out ca.pem &&
  openssl req -x509 $(ec) -days 90 -subj '/CN=some other CA' -keyout other-ca.key -out other-ca.pem &&
  sign() {   # sign NAME CN CA EXTENSIONS
      openssl req $(ec) -subj "/CN=$2" -keyout "$1.key" -out "$1.csr" &&
      openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days 90 \
          -extfile <(printf '%s\n' "$4") -out "$1.pem"
  } &&
  sign server localhost ca 'subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth' &&
  for cn in webtier copees-admin intruder; do
      sign "$cn" "$cn" ca 'extendedKeyUsage=clientAuth' || exit 1
  done &&
  sign rogue webtier other-ca 'extendedKeyUsage=clientAuth' &&
  chmod 0600 ./*.key
) > "$T/pki.log" 2>&1 || { cat "$T/pki.log" >&2; bail "openssl could not make the test certificates"; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
tls_conf() {      # tls_conf PORT [KEY]: the base config + [tls]
    write_conf "[tls]
listen = 127.0.0.1:$1
certificate = $P/server.pem
key = ${2:-$P/server.key}
client_ca = $P/ca.pem
submit_cn = webtier
admin_cn = copees-admin, ops"
}
listeners() {     # listeners PORT: the local addresses listening on TCP PORT
    python3 - "$1" <<'PY'
import ipaddress, sys
port = int(sys.argv[1])
for name in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        lines = open(name).read().splitlines()[1:]
    except OSError:
        continue
    for line in lines:
        f = line.split()
        addr, p = f[1].split(":")
        if f[3] != "0A" or int(p, 16) != port:      # 0A: LISTEN
            continue
        raw = bytes.fromhex(addr)
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
        print(ipaddress.ip_address(raw))
PY
}
up_or_dead() { curl -sf --unix-socket "$SOCK" http://copees/v1/health || ! kill -0 "$COPEESD_PID"; }

# A key that does not belong to the certificate: refused at start.
tls_conf "$(free_port)" "$P/webtier.key"
out=$("$COPEESD" -f -c "$CONF" 2>&1); rc=$?
is "a key that does not match the certificate: copeesd refuses to start" "$rc" 1
like "... naming [tls] key" "$out" '\[tls\] key .*does not match'

# Start on a free port; another process may take it between the choice
# and the bind, so retry on "Address already in use".
CUPS_SERVER=$T/no-cups.sock
for try in 1 2 3 4 5; do
    PORT=$(free_port)
    CUPS_SERVER=$CUPS_SERVER tls_conf "$PORT"
    : > "$T/copeesd.log"
    "$COPEESD" -f -d -c "$CONF" >> "$T/copeesd.log" 2>&1 &
    COPEESD_PID=$!
    wait_until 20 up_or_dead || bail "copeesd did not come up"
    kill -0 "$COPEESD_PID" 2>/dev/null && break
    wait "$COPEESD_PID"
    COPEESD_PID=
    grep -q 'Address already in use' "$T/copeesd.log" || { tail -5 "$T/copeesd.log" >&2; bail "copeesd did not start"; }
    diag "port $PORT was taken, trying another"
done
[ -n "$COPEESD_PID" ] || bail "no free port after 5 tries"
check "copeesd logs the TLS listener" grep -q "tls: serving on 127.0.0.1:$PORT" "$T/copeesd.log"
is "the listener is bound to 127.0.0.1 only" "$(listeners "$PORT")" 127.0.0.1

URL=https://127.0.0.1:$PORT
tls() {   # tls CERT-NAME [curl args...] PATH: body, then "HTTP NNN"; curl's status in TLS_RC
    local who=$1; shift
    local cert=()
    [ "$who" != none ] && cert=(--cert "$P/$who.pem" --key "$P/$who.key")
    local n=$#
    local path=${!n}
    TLS_OUT=$(curl -sS -m 20 --cacert "$P/ca.pem" "${cert[@]}" -w '\nHTTP %{http_code}' \
              "${@:1:n-1}" "$URL$path" 2>"$T/curl.err")
    TLS_RC=$?
    TLS_ERR=$(cat "$T/curl.err")
}

"$MKPDF" --pages 2 "$T/doc.pdf" || bail "mkpdf failed"
tls webtier -H 'Content-Type: application/pdf' --data-binary @"$T/doc.pdf" '/v1/jobs?order=ORD-tls-1'
like "the submit certificate (CN=webtier) uploads a PDF: 201" "$TLS_OUT" 'HTTP 201$'
ID=$(head -n 1 <<<"$TLS_OUT" | jq -r .id)
like "... and gets the job" "$ID" '^[0-9]+$'
tls copees-admin /v1/jobs
like "the admin certificate lists the jobs: 200" "$TLS_OUT" 'HTTP 200$'
is "... the job uploaded over TLS is in the list" "$(head -n 1 <<<"$TLS_OUT" | jq -r ".jobs[] | select(.id == $ID) | .id")" "$ID"
tls webtier "/v1/jobs/$ID"
like "the submit certificate reads its job: 200" "$TLS_OUT" 'HTTP 200$'
tls intruder /v1/jobs
like "a certificate with another CN (CN=intruder) gets 403" "$TLS_OUT" 'HTTP 403$'
like "... forbidden" "$TLS_OUT" '"error":"forbidden"'
tls intruder -H 'Content-Type: application/pdf' --data-binary @"$T/doc.pdf" '/v1/jobs?order=ORD-tls-2'
like "... and cannot upload" "$TLS_OUT" 'HTTP 403$'

# With TLS 1.3 the client learns of the refusal after its Finished, when
# it sends or reads (curl 55 or 56); with TLS 1.2 in the handshake (35).
tls none /v1/health
like "no client certificate: the handshake fails (curl 35, 55 or 56)" "$TLS_RC" '^(35|55|56)$'
like "... with no HTTP answer" "$TLS_OUT" 'HTTP 000$'
tls none --tls-max 1.2 /v1/health
is "no client certificate over TLS 1.2: the handshake fails (curl 35)" "$TLS_RC" 35
like "... with no HTTP answer" "$TLS_OUT" 'HTTP 000$'
tls rogue /v1/health
like "a CN=webtier certificate from another CA: the handshake fails" "$TLS_RC" '^(35|55|56)$'
like "... with no HTTP answer" "$TLS_OUT" 'HTTP 000$'
tls rogue --tls-max 1.2 /v1/health
is "... over TLS 1.2 too (curl 35)" "$TLS_RC" 35
# The client is allowed TLS 1.1 (and the ciphers it needs); the refusal
# must come from copeesd: an alert, not "no protocols available".
tls webtier --tlsv1.1 --tls-max 1.1 --ciphers 'DEFAULT:@SECLEVEL=0' /v1/health
is "TLS 1.1 is refused (curl 35)" "$TLS_RC" 35
like "... by the server (a protocol alert)" "$TLS_ERR" 'alert protocol version|unsupported protocol|wrong version number'
like "... with no HTTP answer" "$TLS_OUT" 'HTTP 000$'
tls webtier --tlsv1.2 --tls-max 1.2 /v1/health
like "TLS 1.2 is accepted" "$TLS_OUT" '"ready":true.*HTTP 200$'
out=$(curl -sS -m 20 --cacert "$P/ca.pem" --cert "$P/copees-admin.pem" --key "$P/copees-admin.key" \
      -w 'HTTP %{http_code} connects %{num_connects}\n' "$URL/v1/health" "$URL/v1/printers" 2>&1)
like "two requests on one kept-alive TLS connection" "$out" 'HTTP 200 connects 1.*HTTP 200 connects 0'
check "the failed handshakes are logged" grep -q 'http: TLS handshake with 127.0.0.1 failed' "$T/copeesd.log"

out=$(api GET /v1/health)
like "the Unix socket still serves" "$out" 'HTTP 200$'
stop_copeesd; rc=$?
is "SIGTERM: exit 0" "$rc" 0
is "the port is closed after the exit" "$(listeners "$PORT")" ""
done_testing
