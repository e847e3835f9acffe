#!/usr/bin/env bash
# Fails when the committed dist/ is not what the sources build to. The Action runs
# dist/index.js, not src/: a change to src/ without `npm run bundle` would ship stale code.
# Rebuilds into a temporary directory (dist/ is left untouched) and compares byte for byte.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

node "$root/scripts/bundle.js" --outdir "$tmp/dist" >/dev/null

if [ ! -d "$root/dist" ]; then
  echo "check-dist: dist/ is missing. Run \`npm run bundle\` and commit dist/." >&2
  exit 1
fi

if ! diff -r -q "$root/dist" "$tmp/dist" >"$tmp/diff.txt" 2>&1; then
  echo "check-dist: dist/ does not match the sources:" >&2
  sed 's/^/  /' "$tmp/diff.txt" >&2
  for f in index.js cli.js; do
    if [ -f "$root/dist/$f" ] && [ -f "$tmp/dist/$f" ]; then
      diff -u "$root/dist/$f" "$tmp/dist/$f" | head -n 40 >&2 || true
    fi
  done
  echo "check-dist: run \`npm run bundle\` and commit dist/." >&2
  exit 1
fi
echo "check-dist: dist/ is up to date."
