#!/usr/bin/env bash
# The command lines' S3 settings end to end (issue 19), against moto's S3 API server on
# 127.0.0.1 (scripts/test-services.sh installs it). The Rust suite (tests/integration/ship.rs)
# drives the storage code as a library; this drives the two binaries as an operator would:
#   1. `hyrank index --publish-to` with the `--s3-*` flags, the secret from
#      HYRANK_S3_SECRET_ACCESS_KEY;
#   2. `hyrank pull` with the same settings from a file (`--s3-config`, the secret included,
#      none in the environment) brings that generation, byte for byte;
#   3. a second build, then `hyrank publish` with the flags moves CURRENT to it;
#   4. `hyrank-serve --source` with its `--source-*` flags (secret from
#      HYRANK_SOURCE_SECRET_ACCESS_KEY) pulls and serves the second, and answers a search.
# No AWS_* variable is set: without the flags the client would go to AWS itself and fail, so
# every step that reaches the bucket shows its flags were read.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-services.sh
cargo build --release --bin hyrank --bin hyrank-serve
bin=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release
for variable in $(env | grep -o '^AWS_[A-Z_]*' || true); do unset "$variable"; done
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fail() { echo "s3-cli-test: $*" >&2; exit 1; }

# The port is free when chosen, not when moto binds it: a moto that exits (the port taken in
# between) is started again on another port.
start_moto() {
  for _ in 1 2 3 4; do
    s3=$(free_port)
    moto_server -H 127.0.0.1 -p "$s3" >"$work/moto.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 300); do
      python3 -c "import urllib.request as u; u.urlopen(u.Request('http://127.0.0.1:$s3/cli', method='PUT'))" \
        2>/dev/null && return 0
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null && { cat "$work/moto.log" >&2; fail "moto_server did not answer on $s3 within 60 s"; }
  done
  cat "$work/moto.log" >&2
  fail "moto_server exited on each of 4 ports"
}
start_moto
url=s3://cli/generations
flags=(--s3-endpoint "http://127.0.0.1:$s3" --s3-allow-http --s3-region us-east-1 --s3-access-key-id test)
export HYRANK_S3_SECRET_ACCESS_KEY=test
catalog=(--catalog fixtures/catalog.jsonl --interactions fixtures/interactions.csv)

# 1. Build and publish in one command.
"$bin/hyrank" index "${catalog[@]}" --index-dir "$work/publisher" --publish-to "$url" "${flags[@]}" \
  >"$work/index1.log" 2>&1 || { cat "$work/index1.log" >&2; fail "hyrank index --publish-to failed"; }
first=$(cat "$work/publisher/CURRENT")
grep -q "published generation $first to $url" "$work/index1.log" || fail "index --publish-to did not report publishing $first"

# 2. Pull it into another folder, every S3 setting from a file: the same files.
cat >"$work/s3.toml" <<TOML
s3_endpoint = "http://127.0.0.1:$s3"
s3_allow_http = true
s3_region = "us-east-1"
s3_access_key_id = "test"
s3_secret_access_key = "test"
TOML
chmod 600 "$work/s3.toml"
env -u HYRANK_S3_SECRET_ACCESS_KEY "$bin/hyrank" pull --from "$url" --index-dir "$work/replica" \
  --s3-config "$work/s3.toml" >"$work/pull.log" 2>&1 || { cat "$work/pull.log" >&2; fail "hyrank pull --s3-config failed"; }
[ "$(cat "$work/replica/CURRENT")" = "$first" ] || fail "the pulled CURRENT is not $first"
# Every file the manifest lists, byte for byte; the manifest itself is the publisher's plus
# each file's size and SHA-256 (`files`), every other value unchanged to the last digit.
python3 - "$work/publisher/generations/$first" "$work/replica/generations/$first" <<'PY' \
  || fail "the pulled generation differs from the published one"
import json, os, sys
local, pulled = (json.load(open(os.path.join(d, "manifest.json"))) for d in sys.argv[1:])
files = pulled.pop("files")
assert pulled == local, "the manifest changed on its way through the bucket"
for name in files:
    a, b = (open(os.path.join(d, name), "rb").read() for d in sys.argv[1:])
    assert a == b, f"{name} differs"
PY

# 3. A second build, published by `hyrank publish`.
"$bin/hyrank" index "${catalog[@]}" --index-dir "$work/publisher" >"$work/index2.log" 2>&1 \
  || { cat "$work/index2.log" >&2; fail "the second hyrank index failed"; }
second=$(cat "$work/publisher/CURRENT")
[ "$second" != "$first" ] || fail "the second build did not make a new generation"
"$bin/hyrank" publish --index-dir "$work/publisher" --to "$url" "${flags[@]}" >"$work/publish.log" 2>&1 \
  || { cat "$work/publish.log" >&2; fail "hyrank publish failed"; }
grep -q "published generation $second to $url .*CURRENT was $first" "$work/publish.log" \
  || fail "hyrank publish did not move CURRENT from $first to $second: $(cat "$work/publish.log")"

# 4. A replica server on the --source-* flags pulls the second and serves it.
serve=$(free_port)
HYRANK_SOURCE_SECRET_ACCESS_KEY=test "$bin/hyrank-serve" --source "$url" --cache-dir "$work/served" \
  --source-endpoint "http://127.0.0.1:$s3" --source-allow-http --source-region us-east-1 \
  --source-access-key-id test --model-dir models/all-MiniLM-L6-v2 --device cpu \
  --bind "127.0.0.1:$serve" >"$work/serve.log" 2>&1 &
pids+=($!)
served=""
for _ in $(seq 300); do
  served=$(python3 - "$serve" <<'PY' 2>/dev/null || true
import json, sys, urllib.request
info = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v1/index", timeout=2))
print(info["manifest"]["generation"])
PY
)
  [ -n "$served" ] && break
  sleep 0.2
done
[ "$served" = "$second" ] || { cat "$work/serve.log" >&2; fail "hyrank-serve --source serves '$served', not $second"; }
hits=$(python3 - "$serve" <<'PY'
import json, sys, urllib.request
request = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/v1/search", method="POST",
                                 data=json.dumps({"query": "tent", "k": 3}).encode(),
                                 headers={"Content-Type": "application/json"})
print(len(json.load(urllib.request.urlopen(request, timeout=10))["hits"]))
PY
)
[ "$hits" -gt 0 ] || fail "the replica answered a search with no hits"
echo "s3-cli-test: index --publish-to, pull (its settings file), publish and hyrank-serve --source all reached moto by their settings ($first, then $second)"
