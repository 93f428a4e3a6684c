#!/bin/sh
# Runs deno where no registry can be reached, from a pack made by
# `deno task pack` (default .device/, or set PACK): the npm packages come from
# the pack, and so does deno itself unless DENO names one (else PATH's).
#
#   tools/offline_deno.sh task bench --workers 1,2,4,8 --seconds 2
#   PACK=/tmp/pack tools/offline_deno.sh task test
set -eu
cd "$(dirname "$0")/.."
pack=${PACK:-.device}
if [ ! -d "$pack/deno_dir" ]; then
  echo "no $pack/deno_dir: run 'deno task pack' where the npm registry is reachable" >&2
  exit 1
fi
deno=${DENO:-}
if [ -z "$deno" ] && [ -f "$pack/deno.xz" ]; then
  deno="$pack/deno"
  if [ ! -x "$deno" ] || [ "$pack/deno.xz" -nt "$deno" ]; then
    if command -v xz >/dev/null; then
      xz -dc "$pack/deno.xz" > "$deno.part"
    else
      python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$pack/deno.xz" > "$deno.part"
    fi
    chmod +x "$deno.part" && mv "$deno.part" "$deno"
  fi
fi
if [ -z "$deno" ]; then
  deno=$(command -v deno) || { echo "no deno: pack one (deno task pack) or put one on PATH" >&2; exit 1; }
fi
DENO_DIR="$(cd "$pack" && pwd)/deno_dir"
export DENO_DIR
export DENO_NO_UPDATE_CHECK=1
exec "$deno" "$@"
