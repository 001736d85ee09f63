#!/usr/bin/env bash
# The project's one test command: Rust build + tests, then the real-client
# integration suite (tests/clients) against the freshly built broker.
# Extra arguments are passed to pytest, e.g. scripts/test.sh -k kcat -x
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT="$(pwd)"

echo "==> building (cargo build --release --workspace)"
cargo build --release --workspace --locked

echo "==> cargo test"
cargo test --workspace --release --locked -- --show-output

echo "==> bench driver unit tests (scripts/bench, no broker)"
"${PYTHON:-python3}" -m unittest discover -s scripts/bench

# The fault tests (tests/clients/test_faults.py) run a broker built with the io crate's fault
# seam, which reads STRAND_FAULTS; every other test runs the production build. Cargo keeps
# both builds; the last command leaves target/release/strand the production one.
echo "==> building the fault-injection broker (target/release/strand-faults)"
cargo build --release --locked --features fault-injection
cp "$REPO_ROOT/target/release/strand" "$REPO_ROOT/target/release/strand-faults"
cargo build --release --workspace --locked
export STRAND_FAULTS_BIN="${STRAND_FAULTS_BIN:-$REPO_ROOT/target/release/strand-faults}"

STRAND_BIN="${STRAND_BIN:-$REPO_ROOT/target/release/strand}"
if [[ ! -x "$STRAND_BIN" ]]; then
    echo "error: broker binary not found at $STRAND_BIN" >&2
    exit 1
fi
export STRAND_BIN

echo "==> ensuring kcat"
if ! command -v kcat >/dev/null 2>&1; then
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
               DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null; }; then
            echo "warning: could not install kcat; test_kcat.py will be skipped" >&2
        fi
    else
        echo "warning: kcat not on PATH and not root; test_kcat.py will be skipped" >&2
    fi
fi

echo "==> python venv (.venv)"
REQS="tests/clients/requirements.txt"
VENV="$REPO_ROOT/.venv"
PY="${PYTHON:-python3}"
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.requirements.sha256"
WANT="$( { sha256sum "$REQS"; "$VENV/bin/python" -VV; } | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$STAMP" ]] || [[ "$(cat "$STAMP")" != "$WANT" ]]; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQS"
    echo "$WANT" > "$STAMP"
fi

echo "==> client tests (pytest tests/clients)"
"$VENV/bin/python" -m pytest tests/clients -v -p no:cacheprovider "$@"

# The page-cache mode (log.io.mode = buffered) exists so strand can be measured as a page-cache
# design; it must pass the same tests. The CLI tests exercise the client side only: once is
# enough.
echo "==> client tests again with log.io.mode = buffered"
buffered_config="$(mktemp)"
journal_config="$(mktemp)"
write_through_config="$(mktemp)"
syncs_config="$(mktemp)"
trap 'rm -f "$buffered_config" "$journal_config" "$write_through_config" "$syncs_config"' EXIT
echo 'log.io.mode = "buffered"' > "$buffered_config"
STRAND_CONFIG="$buffered_config" "$VENV/bin/python" -m pytest tests/clients -q -p no:cacheprovider \
    --deselect tests/clients/test_cli.py "$@"

# The shard journal changes when a strict append is durable and adds a replay to every start:
# the same tests, crash tests included, with it on.
echo "==> client tests again with shard.journal.bytes = 16777216"
echo 'shard.journal.bytes = 16777216' > "$journal_config"
STRAND_CONFIG="$journal_config" "$VENV/bin/python" -m pytest tests/clients -q -p no:cacheprovider \
    --deselect tests/clients/test_cli.py "$@"

# Write-through segments (log.io.write.through) make each append its own fdatasync: the crash
# and disk-fault tests again with them on.
echo "==> crash and fault tests again with log.io.write.through = true"
echo 'log.io.write.through = true' > "$write_through_config"
STRAND_CONFIG="$write_through_config" "$VENV/bin/python" -m pytest tests/clients/test_crash.py \
    tests/clients/test_faults.py -q -p no:cacheprovider "$@"

# Several fdatasyncs in flight per partition (log.flush.syncs.max) change when a round is
# acknowledged: the crash and disk-fault tests again with them on.
echo "==> crash and fault tests again with log.flush.syncs.max = 4"
echo 'log.flush.syncs.max = 4' > "$syncs_config"
STRAND_CONFIG="$syncs_config" "$VENV/bin/python" -m pytest tests/clients/test_crash.py \
    tests/clients/test_faults.py -q -p no:cacheprovider "$@"
