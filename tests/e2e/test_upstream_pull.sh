#!/usr/bin/env bash
# lbd pulls backend sets from a URL and feeds them to the proxy, end to end:
# a real l7proxy, a real lbd in role l7 (its decap on a veth), and a small
# control plane (upstream_source.py) that can change its document, serve
# garbage, redirect, send too much or hang. Checks:
#  - the sets are applied at lbd's start, and a new version within one
#    polling interval (asked of the proxy: GET /v1/clusters/NAME);
#  - unchanged documents are polled with If-None-Match and answered 304;
#  - garbage, a bad shape, a redirect, a body over 4 MiB, a bad backend
#    address (the proxy's 400) and a cluster the proxy lacks are refused,
#    the last good sets kept, each counted in lbd's GET /v1/upstreams and
#    logged once, not once per poll; lbctl pull shows the state;
#  - a hanging source is timed out and counted while lbd's API answers;
#  - a restarted proxy (back to its config's sets) gets the sets again;
#  - HTTPS by host name (resolved, SNI, certificate checked against
#    ca_file) after a reload; a certificate from another CA is refused;
#  - lbd stays up, no sanitizer report.
#
#   tests/e2e/test_upstream_pull.sh [BUILD_DIR]     (default: build-asan)
#
# One private network namespace: everything talks over its loopback (the
# veth only carries lbd's decap hook). Exits 77 without root; cleans up on
# any exit. About 20 s.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
E2E=$REPO/tests/e2e
BUILD=${1:-$REPO/build-asan}
LBD=$BUILD/ctl/lbd
PROXY=$BUILD/l7proxy/l7proxy
LBCTL=$BUILD/ctl/lbctl
PY=/usr/bin/python3
NS=upull$$
INTERVAL=1000
TIMEOUT=500
export ASAN_OPTIONS=detect_leaks=0
# shellcheck source=tests/e2e/tap.sh
. "$E2E/tap.sh"

if [ "$(id -u)" -ne 0 ]; then
  echo "skipped: network namespaces and tc need root"
  exit 77
fi
for b in "$LBD" "$PROXY" "$LBCTL"; do
  [ -x "$b" ] || { echo "not ok - no binary at $b"; echo "0 passed, 1 failed"; exit 1; }
done
D=$(mktemp -d /tmp/portico-upull.XXXXXX)
cleanup() {
  local p
  for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  ip netns del "$NS" 2>/dev/null
  rm -rf "/etc/netns/$NS" "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
nsx() { ip netns exec "$NS" "$@"; }
ip netns add "$NS" || exit 1
nsx ip link set lo up
nsx ip link add upl0 type veth peer name upl1
nsx ip link set upl0 up
nsx ip link set upl1 up
# The control plane's name, for this namespace only (ip netns exec mounts
# /etc/netns/NAME/hosts over /etc/hosts).
mkdir -p "/etc/netns/$NS"
printf '127.0.0.1 localhost\n127.0.0.1 ums.test\n' > "/etc/netns/$NS/hosts"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
wait_port() {
  for _ in $(seq 50); do
    nsx timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
# A document: doc WEB_VERSION WEB_BACKENDS API_VERSION [MORE_CLUSTERS]
# (backends as JSON; more clusters as ', "NAME": {...}').
doc() {
  cat > "$D/doc.tmp" <<EOF
{"clusters": {"web": {"version": $1, "backends": $2},
              "api": {"version": $3, "backends": ["127.0.0.1:18182"]} ${4:-}}}
EOF
  mv "$D/doc.tmp" "$D/doc.json"
}
src() { nsx curl -s -m 2 "http://127.0.0.1:18900$1"; }
src_stat() { src /_stats | $PY -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
pver() { # the proxy's version of a cluster (-1 if it does not answer)
  nsx curl -s -m 2 --unix-socket "$D/proxy.sock" "http://admin/v1/clusters/$1" |
    $PY -c 'import json,sys
try: print(json.load(sys.stdin)["version"])
except Exception: print(-1)'
}
pbackends() {
  nsx curl -s -m 2 --unix-socket "$D/proxy.sock" "http://admin/v1/clusters/$1" |
    $PY -c 'import json,sys; print(",".join(sorted(b["address"] for b in json.load(sys.stdin)["backends"])))'
}
lbd_api() { # lbd_api PATH [CURL ARGS]
  local p=$1; shift
  nsx curl -s -m 2 --unix-socket "$D/lbd.sock" "$@" "http://admin$p"
}
# ups EXPR: a Python expression over d = GET /v1/upstreams.
ups() { lbd_api /v1/upstreams | $PY -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# until SECONDS CMD...: retry CMD every 0.1 s.
until_ok() {
  local end=$(($(now_ms) + $1 * 1000)); shift
  while ! "$@" 2>/dev/null; do
    [ "$(now_ms)" -gt "$end" ] && return 1
    sleep 0.1
  done
}
is() { [ "$(eval "$2")" = "$1" ]; }     # is WANT CMD-STRING
ge() { [ "$(eval "$2")" -ge "$1" ]; }   # ge MIN CMD-STRING

cat > "$D/l7.conf" <<EOF
pop = "t"; host = "upull"; workers = 1; access_log = ""; admin_socket = "$D/proxy.sock";
listeners = ( { address = "127.0.0.1:18180"; } );
clusters = ( { name = "web"; backends = [ "127.0.0.1:18181" ]; },
             { name = "api"; backends = [ "127.0.0.1:18182" ]; } );
routes = ( { path_prefix = "/api"; cluster = "api"; }, { path_prefix = "/"; cluster = "web"; } );
EOF
lbd_conf() { # lbd_conf URL [EXTRA]
  cat > "$D/lbd.conf" <<EOF
role = "l7"; host = "t"; interface = "upl0"; admin_socket = "$D/lbd.sock";
upstreams = { url = "$1"; interval_ms = $INTERVAL; timeout_ms = $TIMEOUT;
              proxy_socket = "$D/proxy.sock"; ${2:-} };
EOF
}
# Started with ip netns exec itself, not the nsx function: $! is then the
# daemon (ip execs it), not a subshell a signal would stop short of it.
start_proxy() {
  ip netns exec "$NS" "$PROXY" -c "$D/l7.conf" >> "$D/l7.log" 2>&1 &
  PX=$!
  wait_port 18180
}

doc 1 '["127.0.0.1:18181", {"address": "127.0.0.1:18183", "weight": 3}]' 1
nsx "$PY" "$E2E/upstream_source.py" --port 18900 --doc "$D/doc.json" > "$D/src.log" 2>&1 &
wait_port 18900 || { bad "the source listens"; cat "$D/src.log"; exit 1; }
start_proxy || { bad "the proxy listens"; cat "$D/l7.log"; exit 1; }
lbd_conf "http://127.0.0.1:18900/upstreams.json"
t0=$(now_ms)
ip netns exec "$NS" "$LBD" -c "$D/lbd.conf" > "$D/lbd.log" 2>&1 &
LB=$!

# --- applied at start, then kept with 304s -----------------------------------------
if until_ok 5 is 1 "pver web" && until_ok 2 is 1 "pver api"; then
  ok "applied at start: web and api at version 1, $(($(now_ms) - t0)) ms after lbd started"
else
  bad "not applied at start: web $(pver web), api $(pver api)"; cat "$D/lbd.log"
fi
be=$(pbackends web)
[ "$be" = "127.0.0.1:18181,127.0.0.1:18183" ] && ok "the proxy's web backends are the document's ($be)" ||
  bad "web backends: $be"
sleep $((INTERVAL * 3 / 1000)).5
c=$(src_stat conditional) nm=$(src_stat not_modified) okc=$(src_stat ok)
lnm=$(ups 'd["counters"]["not_modified"]')
etag=$(ups 'd["etag"]')
if [ "$c" -ge 2 ] && [ "$nm" -ge 2 ] && [ "$okc" = 1 ] && [ "$lnm" -ge 2 ] && [[ $etag == \"*\" ]]; then
  ok "unchanged document polled with If-None-Match: $c conditional, $nm 304s, 1 full fetch; lbd: not_modified $lnm, etag $etag"
else
  bad "ETag polling: source conditional=$c not_modified=$nm ok=$okc; lbd not_modified=$lnm etag=$etag"
fi
ua=$(src_stat user_agent)
[[ $ua == portico-lbd/* ]] && ok "User-Agent $ua" || bad "User-Agent: $ua"

# --- a new version within one polling interval ---------------------------------------
doc 2 '["127.0.0.1:18181", "127.0.0.1:18184"]' 1
t0=$(now_ms)
until_ok 5 is 2 "pver web"
dt=$(($(now_ms) - t0))
if [ "$(pver web)" = 2 ] && [ "$dt" -le $((INTERVAL + 500)) ]; then
  ok "version 2 applied by the proxy $dt ms after the document changed (interval $INTERVAL ms)"
else
  bad "version 2: proxy at $(pver web) after $dt ms"
fi
until_ok 3 is applied "ups 'd[\"clusters\"][\"web\"][\"state\"]'"
ups 'd["clusters"]' | sed 's/^/# clusters: /'

# --- bad documents keep the last good sets --------------------------------------------
src /_mode/garbage > /dev/null
until_ok 4 ge 2 "ups 'd[\"counters\"][\"errors\"][\"bad_json\"]'"
n=$(ups 'd["counters"]["errors"]["bad_json"]')
logged=$(grep -c 'bad document: not JSON' "$D/lbd.log")
if [ "$n" -ge 2 ] && [ "$logged" = 1 ] && [ "$(pver web)" = 2 ]; then
  ok "garbage refused $n times, logged once, the proxy keeps version 2"
else
  bad "garbage: bad_json=$n, logged $logged times, proxy web at $(pver web)"
fi
src /_mode/normal > /dev/null
doc '"3"' '[]' 1
until_ok 4 ge 1 "ups 'd[\"counters\"][\"errors\"][\"bad_document\"]'"
msg=$(ups 'd["last_message"]')
[[ $msg == *clusters.web.version* ]] && [ "$(pver web)" = 2 ] &&
  ok "a bad shape refused, naming the field ($msg)" || bad "bad shape: $msg, proxy web at $(pver web)"
src /_mode/redirect > /dev/null
until_ok 4 ge 1 "ups 'd[\"counters\"][\"errors\"][\"redirect\"]'" &&
  [ "$(pver web)" = 2 ] && ok "a redirect is not followed: $(ups 'd["last_message"]')" ||
  bad "redirect: $(ups 'd["counters"]["errors"]')"
src /_mode/big > /dev/null
until_ok 4 ge 1 "ups 'd[\"counters\"][\"errors\"][\"too_large\"]'" &&
  [ "$(pver web)" = 2 ] && ok "a body over 4 MiB is cut and refused: $(ups 'd["last_message"]')" ||
  bad "too large: $(ups 'd["counters"]["errors"]')"
src /_mode/normal > /dev/null

# A bad backend address: the proxy refuses web's set (400); api's applies;
# a cluster the proxy does not have is reported, not fatal to the others.
doc 3 '["10.0.0.300:80"]' 2 ', "ghost": {"version": 1, "backends": []}'
until_ok 4 is 2 "pver api"
until_ok 3 is rejected "ups 'd[\"clusters\"][\"web\"][\"state\"]'"
werr=$(ups 'd["clusters"]["web"]["error"]')
if [ "$(pver web)" = 2 ] && [ "$(pver api)" = 2 ] && [[ $werr == *"backends[0].address"* ]]; then
  ok "a bad backend address: the proxy refused web version 3 ($werr) and keeps 2; api version 2 applied"
else
  bad "bad address: web $(pver web), api $(pver api), web error: $werr"
fi
sleep $((INTERVAL * 2 / 1000)).2
rej=$(ups 'd["counters"]["errors"]["rejected"]')
logged=$(grep -c 'refused version 3' "$D/lbd.log")
[ "$rej" = 1 ] && [ "$logged" = 1 ] && ok "a refused version is counted and logged once, not sent again" ||
  bad "refused version: counted $rej, logged $logged times"
gs=$(ups 'd["clusters"]["ghost"]["state"], d["counters"]["errors"]["unknown_cluster"]')
logged=$(grep -c 'the proxy has no cluster ghost' "$D/lbd.log")
[ "$gs" = "unknown_cluster 1" ] && [ "$logged" = 1 ] &&
  ok "a cluster the proxy lacks: state unknown_cluster, counted and logged once" ||
  bad "unknown cluster: $gs, logged $logged times"
table=$(nsx "$LBCTL" -s "$D/lbd.sock" pull)
echo "$table" | sed 's/^/#   /'
grep -Eq '^web +3 +2 +2 +rejected +backends\[0\]\.address' <<<"$table" &&
  grep -Eq '^api +2 +2 +2 +applied' <<<"$table" && grep -q '^url ' <<<"$table" &&
  ok "lbctl pull shows the poller and each cluster" || bad "lbctl pull: $table"

# --- a hanging source is timed out; lbd keeps answering ------------------------------
src /_mode/hang > /dev/null
t0=$(now_ms)
until_ok 5 ge 1 "ups 'd[\"counters\"][\"errors\"][\"timeout\"]'"
dt=$(($(now_ms) - t0))
worst=0
for _ in 1 2 3 4 5; do
  t1=$(now_ms); lbd_api /v1/status > /dev/null; t=$(($(now_ms) - t1))
  [ "$t" -gt "$worst" ] && worst=$t
  sleep 0.2
done
msg=$(ups 'd["last_message"]')
if [[ $msg == *"timeout after $TIMEOUT ms"* ]] && [ "$dt" -le $((INTERVAL + TIMEOUT + 1000)) ] &&
  [ "$worst" -lt 500 ] && [ "$(pver web)" = 2 ]; then
  ok "a hanging source timed out ($msg, counted $dt ms in); lbd's API answered within $worst ms meanwhile"
else
  bad "hang: $msg after $dt ms, API worst $worst ms, proxy web $(pver web)"
fi

# --- back to normal -----------------------------------------------------------------
src /_mode/normal > /dev/null
doc 4 '["127.0.0.1:18181", "127.0.0.1:18185"]' 2
until_ok 5 is 4 "pver web" && grep -q 'answers again' "$D/lbd.log" &&
  ok "the source recovers: web version 4 applied, recovery logged" ||
  bad "recovery: proxy web at $(pver web)"

# --- a restarted proxy gets the sets again --------------------------------------------
stop() { # stop PID: SIGTERM, and SIGKILL if it is not gone in 10 s
  kill -TERM "$1" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null
  wait "$1" 2>/dev/null
}
stop "$PX"
start_proxy || bad "the proxy restarts"
until_ok 5 is 4 "pver web" && until_ok 2 is 2 "pver api"
rp=$(ups 'd["counters"]["repushed"]')
if [ "$(pver web)" = 4 ] && [ "$(pver api)" = 2 ] && [ "$rp" -ge 2 ]; then
  ok "the restarted proxy has the sets again (web 4, api 2; repushed $rp) while the source answers 304"
else
  bad "after the proxy restart: web $(pver web), api $(pver api), repushed $rp"
fi

ups 'json.dumps(d["counters"])' | sed 's/^/# counters: /'

# --- HTTPS by name, after a reload ----------------------------------------------------------
(cd "$D" &&
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=test-ca \
    -keyout ca.key -out ca.pem 2>/dev/null &&
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=other-ca \
    -keyout other.key -out other.pem 2>/dev/null &&
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=ums.test \
    -keyout srv.key -out srv.csr 2>/dev/null &&
  printf 'subjectAltName=DNS:ums.test\n' > srv.ext &&
  openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile srv.ext -out srv.pem 2>/dev/null) || bad "making test certificates"
doc 5 '["127.0.0.1:18181"]' 2
nsx "$PY" "$E2E/upstream_source.py" --port 18943 --doc "$D/doc.json" --tls "$D/srv.pem" "$D/srv.key" \
  > "$D/src-tls.log" 2>&1 &
wait_port 18943 || bad "the TLS source listens"
lbd_conf "https://ums.test:18943/upstreams.json" "ca_file = \"$D/nope.pem\";"
out=$(lbd_api /v1/reload -X POST)
[[ $out == *nope.pem* ]] && [ "$(ups 'd["url"]')" = "http://127.0.0.1:18900/upstreams.json" ] &&
  ok "a reload with an unreadable ca_file is refused, the running poller kept" || bad "bad ca_file reload: $out"
lbd_conf "https://ums.test:18943/upstreams.json" "ca_file = \"$D/ca.pem\";"
lbd_api /v1/reload -X POST > /dev/null
if until_ok 5 is 5 "pver web"; then
  ok "https://ums.test (resolved in the namespace, certificate checked against ca_file): version 5 applied"
else
  bad "https: proxy web at $(pver web); $(ups 'd["last_message"]')"
fi
sni=$(nsx curl -s -m 2 --cacert "$D/ca.pem" --resolve ums.test:18943:127.0.0.1 https://ums.test:18943/_stats |
  $PY -c 'import json,sys; d=json.load(sys.stdin); print(d["sni"], d["ok"])')
[[ $sni == "ums.test "[1-9]* ]] && ok "lbd sent SNI ums.test (source: SNI, 200s = $sni)" || bad "SNI: $sni"
lbd_conf "https://ums.test:18943/upstreams.json" "ca_file = \"$D/other.pem\";"
lbd_api /v1/reload -X POST > /dev/null
doc 6 '["127.0.0.1:18181"]' 2
until_ok 4 ge 1 "ups 'd[\"counters\"][\"errors\"][\"tls\"]'"
msg=$(ups 'd["last_message"]')
[[ $msg == *certificate* ]] && [ "$(pver web)" = 5 ] &&
  ok "a certificate from another CA is refused ($msg); the proxy keeps version 5" ||
  bad "wrong CA: $msg, proxy web $(pver web)"

# --- the end -----------------------------------------------------------------------------
kill -0 "$LB" 2>/dev/null && ok "lbd is still running" || { bad "lbd died"; tail -20 "$D/lbd.log"; }
stop "$LB"
stop "$PX"
if grep -q -E "ERROR: AddressSanitizer|runtime error:" "$D/lbd.log" "$D/l7.log"; then
  bad "sanitizer report"; grep -h -m1 -A20 -E "ERROR: AddressSanitizer|runtime error:" "$D/lbd.log" "$D/l7.log"
else
  ok "no sanitizer report"
fi
grep -E 'upstreams' "$D/lbd.log" | sed 's/^/# lbd: /'
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
