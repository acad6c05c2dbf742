#!/usr/bin/env bash
# Ingest and read figures of the store backends, with the real binary, in one run:
#   bolt        one node on the embedded store
#   pg-1node    one node on PostgreSQL
#   pg-2nodes   two nodes on one PostgreSQL database, the sessions split between them
# Ingest: smtp-source (Postfix's), 10 KiB messages, 1/8/64 sessions, msg/s = messages / wall time
# (with two nodes, two smtp-source at once, each half the sessions and messages; wall time of both).
# Read: shared/bench/read-anchors.py (UID FETCH 1:* (FLAGS ENVELOPE) on 10,000 messages, BODY[] and
# RETR of 1 MiB, POP3 UIDL/LIST, over TLS) on bolt and on PostgreSQL, same content.
# A throw-away PostgreSQL cluster (initdb in a temp dir, fsync on, as nobody when root) is started and
# removed. usage: scripts/bench-nodes.sh [REPS]   (needs smtp-source, python3, PostgreSQL's initdb)
set -euo pipefail
reps=${1:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
src=/usr/sbin/smtp-source
anchors=$root/../shared/bench/read-anchors.py
[ -x $src ] || { echo "smtp-source missing (apt-get install postfix)" >&2; exit 1; }
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$pgbin/initdb" ] || { echo "PostgreSQL missing (apt-get install postgresql)" >&2; exit 1; }
work=$(mktemp -d /tmp/ybench.XXXX); chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -f "$work/pg/data/postmaster.pid" ] && as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

go build -o "$work/yubin" "$root/cmd/yubin"
mkdir "$work/pg"; [ "$(id -u)" = 0 ] && chown nobody "$work/pg"
as_pg "$pgbin/initdb" -D "$work/pg/data" -U yubin --auth=trust -E UTF8 --locale=C >/dev/null
pgport=$(free_port)
as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
  -o "-p $pgport -k $work/pg -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
"$pgbin/createdb" -h 127.0.0.1 -p "$pgport" -U yubin yubin
url="postgres://yubin@127.0.0.1:$pgport/yubin?sslmode=disable"

# node NAME BACKEND: a data dir and config with free ports; prints nothing.
declare -A smtp imaps pop3s
node() {
  local name=$1 backend=$2 d="$work/$1"
  mkdir -p "$d"
  smtp[$name]=127.0.0.1:$(free_port); imaps[$name]=$(free_port); pop3s[$name]=$(free_port)
  cat > "$d/yubin.toml" <<TOML
hostname = "mx.bench.test"
[listen]
smtp = "${smtp[$name]}"
submission = "off"
submissions = "off"
pop3 = "off"
pop3s = "127.0.0.1:${pop3s[$name]}"
imap = "off"
imaps = "127.0.0.1:${imaps[$name]}"
web = "off"
[smtp]
max_connections_per_ip = 0
[dns]
check_inbound = false
[store]
default_quota = 0
TOML
  if [ "$backend" = postgres ]; then printf 'backend = "postgres"\npostgres_url = "%s"\n' "$url" >> "$d/yubin.toml"; fi
}
start() { # start NAME: serve in the background until "yubin ready"
  local d="$work/$1"
  "$work/yubin" serve --config "$d/yubin.toml" --data "$d" 2> "$d/log" &
  pids+=($!)
  for _ in $(seq 300); do grep -q 'yubin ready' "$d/log" && return; sleep 0.1; done
  echo "$1 did not start:"; cat "$d/log"; exit 1
}
cli() { local n=$1; shift; "$work/yubin" --config "$work/$n/yubin.toml" --data "$work/$n" "$@"; }

node bolt bolt; node pgA postgres; node pgB postgres
for n in bolt pgA; do
  cli $n domain add bench.test >/dev/null
  printf 'pw-bench\n' | cli $n account add bench@bench.test --password-stdin >/dev/null
done
start bolt; start pgA; start pgB

ingest() { # ingest SESSIONS MESSAGES ADDR... : wall-time msg/s, the sessions split over the addresses
  local s=$1 n=$2; shift 2
  local k=$#; local t0 t1
  t0=$(date +%s.%N)
  local ps=()
  for a in "$@"; do $src -s $(( (s + k - 1) / k )) -m $(( n / k )) -l 10240 -f a@outside.test -t bench@bench.test "$a" >/dev/null & ps+=($!); done
  for p in "${ps[@]}"; do wait "$p" || { echo "smtp-source failed (a reply was not 2xx)" >&2; exit 1; }; done
  t1=$(date +%s.%N)
  python3 -c "print(round($n/($t1-$t0)))"
}
declare -A res
for r in $(seq "$reps"); do
  for s in 1 8 64; do
    n=$(( s == 1 ? 500 : 3000 ))
    res[bolt,$s]+="$(ingest $s $n "${smtp[bolt]}") "
    res[pg1,$s]+="$(ingest $s $n "${smtp[pgA]}") "
    res[pg2,$s]+="$(ingest $s $n "${smtp[pgA]}" "${smtp[pgB]}") "
  done
done
echo "ingest, 10 KiB, msg/s (median of $reps):"
for s in 1 8 64; do
  python3 - "$s" "${res[bolt,$s]}" "${res[pg1,$s]}" "${res[pg2,$s]}" <<'PY'
import sys, statistics as st
s, b, p1, p2 = sys.argv[1], *[[int(x) for x in a.split()] for a in sys.argv[2:]]
b, p1, p2 = st.median(b), st.median(p1), st.median(p2)
print(f"sessions={s:>2}  bolt {b:6.0f}   pg 1 node {p1:6.0f} ({p1/b:.2f}x bolt)   pg 2 nodes {p2:6.0f} ({p2/b:.2f}x bolt, {p2/p1:.2f}x 1 node)")
PY
done

# The read path on 10,000 messages of 2 KiB and one of 1 MiB, on each backend: new accounts.
for n in bolt pgA; do
  printf 'pw-reader\n' | cli $n account add reader@bench.test --password-stdin >/dev/null
  $src -s 64 -m 10000 -l 2048 -f a@outside.test -t reader@bench.test "${smtp[$n]}" >/dev/null
  $src -s 1 -m 1 -l 1048576 -f a@outside.test -t reader@bench.test "${smtp[$n]}" >/dev/null
done
if [ -f "$anchors" ]; then
  python3 "$anchors" yubin-bolt "${imaps[bolt]}" "${pop3s[bolt]}" reader@bench.test pw-reader "$reps"
  python3 "$anchors" yubin-postgres "${imaps[pgA]}" "${pop3s[pgA]}" reader@bench.test pw-reader "$reps"
else
  echo "no $anchors: read figures skipped"
fi
