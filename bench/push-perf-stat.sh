#!/bin/bash
# CPU (task-clock) and page faults per archive-push, counted by perf over N pushes of distinct
# segments into a fresh repository (as root; the tool runs as postgres, as archive_command does).
#
#   bench/push-perf-stat.sh BIN TAG N PGDATA WALDIR     e.g.
#   bench/push-perf-stat.sh dist/pgbunker after 10 /tmp/pushenv/pg /tmp/pushenv/wal
#
# PGDATA: any initdb'd PostgreSQL data directory (its pg_control names the cluster); WALDIR: at
# least N WAL segment files (copies of one segment under distinct names are fine). The counts
# include runuser and one bash loop, the same for every tool. COMPRESS=gz|none|lz4 (default lz4).
set -euo pipefail
BIN=$1; TAG=$2; N=$3; PGDATA=$4; WALDIR=$5
D=$(mktemp -d /tmp/push-perf-$TAG-XXXX)
cat > "$D/c.conf" <<EOC
[global]
repo1-path=$D/repo
lock-path=$D/lock
log-path=$D
log-level-file=off
log-level-console=off
compress-type=${COMPRESS:-lz4}

[s]
pg1-path=$PGDATA
EOC
chown -R postgres:postgres "$D"
runuser -u postgres -- "$BIN" --config="$D/c.conf" --stanza=s --no-online stanza-create >/dev/null
SEGS=$(ls "$WALDIR" | grep -E '^[0-9A-F]{24}$' | head -"$N" | tr '\n' ' ')
perf stat -x, -e task-clock,page-faults -o "$D/perf.txt" runuser -u postgres -- bash -c "for s in $SEGS; do $BIN --config=$D/c.conf --stanza=s archive-push $WALDIR/\$s || exit 1; done"
awk -F, -v n="$N" -v t="$TAG" '/task-clock/{tc=$1} /page-faults/{pf=$1} END{printf "%s: %.1f ms task-clock/push, %d page-faults/push\n", t, tc/n, pf/n}' "$D/perf.txt"
rm -rf "$D"
