#!/usr/bin/env bash
# A Yubin server set up as the ingest and read benchmarks measure it (README, "Tests, benchmarks,
# fuzzing"): its data dir on the same disk as Postfix's queue, port 25 on 127.0.0.1:PORT, the domain
# bench.test with bench@bench.test (password pw-bench), scanning on (the built-in engine), the spam
# stage on with a domain model trained on 200 spam and 200 ham generated messages,
# dns.check_inbound = false (no DNS here; Postfix does no SPF either) and no per-address connection
# limits (64 sessions from one address; Postfix exempts its own networks from its limit).
#
# usage: scripts/bench-server.sh DATA_DIR [PORT_BASE]
#   builds bin/yubin, sets DATA_DIR up (anew), starts the server in the background and prints its PID.
#   Listeners: smtp PORT_BASE+25, imap PORT_BASE+143, imaps PORT_BASE+993, pop3s PORT_BASE+995
#   (PORT_BASE defaults to 30000). Stop it with: kill PID.
# Then e.g.: ../shared/bench/ingest.sh 127.0.0.1:30025 bench@bench.test 5
set -euo pipefail
data=$1; base=${2:-30000}
cd "$(dirname "$0")/.."
go build -o bin/yubin ./cmd/yubin
bin=$PWD/bin/yubin
rm -rf "$data"; mkdir -p "$data"
cat > "$data/yubin.toml" <<CONF
hostname = "mx.bench.test"
data_dir = "$data"
[listen]
smtp = "127.0.0.1:$((base + 25))"
submission = "off"
submissions = "off"
pop3 = "off"
pop3s = "127.0.0.1:$((base + 995))"
imap = "127.0.0.1:$((base + 143))"
imaps = "127.0.0.1:$((base + 993))"
[smtp]
max_connections = 2000
max_connections_per_ip = 0
[pop3]
max_connections_per_ip = 0
[imap]
max_connections = 20000
max_connections_per_ip = 0
max_userip_connections = 0
[dns]
check_inbound = false
[log]
level = "warn"
CONF
y() { "$bin" --config "$data/yubin.toml" "$@"; }
y domain add bench.test >/dev/null
printf 'pw-bench\n' | y account add bench@bench.test --password-stdin >/dev/null
y account quota bench@bench.test 0 >/dev/null 2>&1 || true
# Training mail: two vocabularies, so that the model holds a few thousand tokens of each class.
python3 - "$data/train" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(1)
def words(prefix, n): return [prefix + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))) for _ in range(n)]
vocab = {"spam": words("", 3000) + ["viagra", "winner", "casino", "offer", "free"], "ham": words("", 3000) + ["meeting", "report", "invoice", "tomorrow"]}
for cls in ("spam", "ham"):
    d = os.path.join(root, cls); os.makedirs(d)
    for i in range(200):
        body = "\r\n".join(" ".join(rng.choice(vocab[cls]) for _ in range(12)) for _ in range(40))
        with open(os.path.join(d, f"{i}.eml"), "w", newline="") as f:
            f.write(f"From: a{i}@{cls}.example\r\nTo: bench@bench.test\r\nSubject: {' '.join(rng.choice(vocab[cls]) for _ in range(5))}\r\n"
                    f"Message-ID: <{cls}{i}@x>\r\n\r\n{body}\r\n")
PY
y spam train bench.test --spam "$data/train/spam" --ham "$data/train/ham" >/dev/null
"$bin" serve --config "$data/yubin.toml" >"$data/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	if (exec 3<>/dev/tcp/127.0.0.1/$((base + 25))) 2>/dev/null; then echo "$pid"; exit 0; fi
	kill -0 "$pid" 2>/dev/null || { cat "$data/server.log" >&2; exit 1; }
	sleep 0.1
done
echo "bench-server: port $((base + 25)) not open after 10 s; log in $data/server.log" >&2
exit 1
