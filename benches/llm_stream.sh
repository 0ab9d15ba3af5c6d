#!/usr/bin/env bash
# Model-stream benchmark (measures and prints; asserts nothing): CPU time and
# max RSS of `apimedic ask --llm` against a loopback server-sent-events
# server that streams
#   1. one 4 MB text chunk (a single `data:` line of 4 MB),
#   2. a 10 MB answer in 20-byte deltas (~500,000 events),
# with the reply budget raised so nothing is cut (--llm-reply-tokens), and
# once more with the default budget (800 tokens: the reply is cut early).
# Stream assembly must be linear: 10 MB should cost about 2.5x the 4 MB case
# per byte or less, not 6x.
#
#   benches/llm_stream.sh
#   APIMEDIC_BIN=target/release/apimedic benches/llm_stream.sh   # no build
set -euo pipefail
cd "$(dirname "$0")/.."
command -v python3 >/dev/null || { echo "llm_stream.sh: python3 is needed" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "llm_stream.sh: /usr/bin/time is needed (apt-get install time)" >&2; exit 2; }
# APIMEDIC_BIN: a binary already built (else it is built here; --all-targets:
# the feature set the test builds use, so their dependencies are reused).
bin=${APIMEDIC_BIN:-}
if [[ -z $bin ]]; then
    cargo build --release --all-targets --quiet
    bin=${CARGO_TARGET_DIR:-target}/release/apimedic
fi
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
cp "$bin" "$tmp/apimedic"

cat >"$tmp/sse.py" <<'PY'
import json, sys, socket, threading
mode, port_file = sys.argv[1], sys.argv[2]
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(8)
open(port_file, "w").write(str(s.getsockname()[1]))
def ev(text):
    return ("data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": text}}]}) + "\n\n").encode()
big = ev("Backend inventory-app is failing. " * (4_000_000 // 34))
small = [ev("inventory-app fails. "[: 20]) for _ in range(1)]
def serve(c):
    c.recv(1 << 20)
    c.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
    if mode == "chunk":
        c.sendall(big)
    else:
        block = small[0] * 1000
        for _ in range(500):  # 500,000 deltas of 20 bytes = 10 MB of text
            c.sendall(block)
    c.sendall(b"data: [DONE]\n\n"); c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,)).start()
PY

run() {  # mode, reply tokens
    python3 "$tmp/sse.py" "$1" "$tmp/port.$1" & sleep 0.5
    local port; port=$(cat "$tmp/port.$1")
    local tokens=${2:+--llm-reply-tokens $2}
    /usr/bin/time -f "%U %S %M" -o "$tmp/t" "$tmp/apimedic" ask --llm --llm-url "http://127.0.0.1:$port/v1" \
        --llm-steps 1 --llm-timeout 120 --llm-deadline 600 $tokens --format json \
        "Which backend is failing?" fixtures/scenarios/backend-oom >"$tmp/out.json"
    read -r user sys rss <"$tmp/t"
    local chars; chars=$(python3 -c "import json;print(len(json.load(open('$tmp/out.json'))['text']))")
    printf '%-34s cpu %6.2f s   max RSS %5d MB   answer %9d chars\n' "$1 ${2:-default budget}" \
        "$(awk "BEGIN{print $user+$sys}")" $((rss / 1024)) "$chars"
    kill %1 2>/dev/null || true; wait 2>/dev/null || true
}
echo "# $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
echo "apimedic ask --llm against a loopback SSE server (backend-oom scenario; includes loading it)"
run chunk 2000000
run answer 4000000
run answer ""
