#!/usr/bin/env bash
# The test command: builds strand, runs the Rust tests, then the real-client suite
# (confluent-kafka / librdkafka, kafka-python, kcat) against the real binary.
# Extra arguments go to pytest, e.g. scripts/test.sh -k groups
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "building (release)"
cargo build --release --workspace --locked

step "cargo test --workspace"
cargo test --release --workspace --locked

if ! command -v kcat >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    step "installing kcat (Debian's links librdkafka 2.0, an older client still in wide use)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null) \
      || echo "kcat could not be installed; its tests will be skipped"
  fi
fi

step "python venv with the client packages"
requirements=tests/clients/requirements.txt
stamp=.venv/.requirements.sha256
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r "$requirements"
  echo "$want" > "$stamp"
fi

step "client tests (pytest tests/clients)"
export STRAND_BIN="$PWD/target/release/strand"
exec .venv/bin/python -m pytest tests/clients -v -p no:cacheprovider "$@"
