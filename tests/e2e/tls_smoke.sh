#!/usr/bin/env bash
# tls_smoke - a built l7proxy serves TLS: handshakes, TLS 1.3 and 1.2
# resumption with tickets from a secret file, ECDSA and RSA by client.
# For builds that the end-to-end suite does not run (the OpenSSL 3 one).
#
#   tests/e2e/tls_smoke.sh L7PROXY_BINARY [TLS_RESUME_LOAD_BINARY]
#
# The second binary (tests/bench/tls_resume_load of the BoringSSL build)
# resumes as Chrome does: no TLS 1.2 session_ticket extension next to a
# TLS 1.3 ticket. The OpenSSL build once sent such clients no new ticket
# on a resumed connection, which the Python (OpenSSL) client never showed.
#
# Loopback only, a port the kernel picks; no backend (requests get 503).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(realpath "$1")
LOAD=${2:+$(realpath "$2")}
DIR=$(mktemp -d /tmp/portico-tls-smoke.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT
show_err() { cat "$DIR/l7.err" 2>/dev/null; }

cd "$DIR"
for k in ec rsa; do
  if [ $k = ec ]; then opt=(-newkey ec -pkeyopt ec_paramgen_curve:P-256); else opt=(-newkey rsa:2048); fi
  openssl req -x509 "${opt[@]}" -nodes -days 2 -subj /CN=smoke.test \
    -addext subjectAltName=DNS:smoke.test -keyout $k.key -out $k.pem 2>/dev/null
done
cat ec.pem rsa.pem > ca.pem
head -c 48 /dev/urandom > secret
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > l7.conf <<EOF
pop = "smoke"; host = "a"; workers = 2; access_log = "";
listeners = ( { address = "127.0.0.1:$port"; tls = true; } );
tls = { certificates = ( { certificate = "ec.pem"; key = "ec.key"; },
                         { certificate = "rsa.pem"; key = "rsa.key"; } );
        ticket_secret = "secret"; };
upstream = { backends = [ "127.0.0.1:9" ]; };
EOF
"$BIN" -c l7.conf 2>l7.err &
pid=$!
for ((i = 0; i < 50; i++)); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.05
done
fail=0
for v in "" --tls12; do
  out=$(/usr/bin/python3 "$REPO/tests/e2e/tls_resume.py" --host 127.0.0.1 --port "$port" \
    --sni smoke.test --ca ca.pem --count 10 $v)
  if /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(not (d["connections"] == 10 and d["resumed"] == 9))' "$out"; then
    echo "ok - resumption ${v:-TLS 1.3}: $out"
  else
    echo "not ok - resumption ${v:-TLS 1.3}: $out"; fail=1
  fi
done
if [ -n "$LOAD" ]; then
  out=$("$LOAD" --connect "127.0.0.1:$port" --sni smoke.test --ca ca.pem --count 20 --concurrency 1)
  if /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(not (d["connections"] == 20 and d["resumed"] == 19))' "$out"; then
    echo "ok - resumption by a BoringSSL client: $out"
  else
    echo "not ok - resumption by a BoringSSL client: $out"; fail=1
  fi
fi
sig=$(openssl s_client -connect "127.0.0.1:$port" -servername smoke.test -sigalgs RSA-PSS+SHA256 \
  </dev/null 2>&1 | sed -n 's/^Peer signature type: //p')
if [ "$sig" = RSA-PSS ]; then echo "ok - RSA for a client without ECDSA"; else echo "not ok - RSA fallback ($sig)"; fail=1; fi
kill -0 "$pid" 2>/dev/null || { echo "not ok - l7proxy died"; cat l7.err; fail=1; }
[ $fail = 0 ] || show_err
exit $fail
