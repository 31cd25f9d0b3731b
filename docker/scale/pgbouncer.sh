#!/usr/bin/env bash
# Build PgBouncer >= 1.21 from Debian's source package into .data/pgbouncer (`make pgbouncer`).
#
# Why: PgBouncer keeps protocol-level prepared statements in transaction pooling mode only
# from 1.21 on (`max_prepared_statements`), and Debian bookworm ships 1.18. Debian trixie's
# source package (1.24.1 with Debian's security patches) builds against bookworm's libraries.
# The source comes through a private apt configuration in a temporary directory, so the
# system's sources, package lists and caches stay as they were; apt checks the files against
# the suite's signed Release file. Idempotent: a build already there is kept.
#
# Settings (environment): PGBOUNCER_PREFIX (default: <repo>/.data/pgbouncer),
# PGBOUNCER_SUITE (trixie), PGBOUNCER_MIRROR (http://deb.debian.org/debian).
# Installing missing build dependencies (apt-get) needs root; building does not.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
prefix=${PGBOUNCER_PREFIX:-$repo/.data/pgbouncer}
suite=${PGBOUNCER_SUITE:-trixie}
mirror=${PGBOUNCER_MIRROR:-http://deb.debian.org/debian}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
build_deps=(gcc make pkg-config patch xz-utils libevent-dev libssl-dev libc-ares-dev)

# True when binary $1 runs and reports PgBouncer 1.21 or later.
recent_enough() {
  "$1" --version 2>/dev/null | awk 'NR == 1 && $1 == "PgBouncer" {
    split($2, v, "."); found = (v[1] > 1 || (v[1] == 1 && v[2] >= 21))
  } END { exit !found }'
}

if [ -x "$prefix/bin/pgbouncer" ] && recent_enough "$prefix/bin/pgbouncer"; then
  echo "$("$prefix/bin/pgbouncer" --version | head -n1) already built: $prefix/bin/pgbouncer"
  exit 0
fi

missing=()
for package in "${build_deps[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' ||
    missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: missing build dependencies; as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "== installing build dependencies: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  install=(apt-get install -y -q --no-install-recommends "${missing[@]}")
  "${install[@]}" || { apt-get update -q && "${install[@]}"; }
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/pgbouncer-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src"
echo "deb-src [signed-by=$keyring] $mirror $suite main" >"$work/apt/sources.list"
# _apt (apt's download sandbox) must be able to write where the files land.
chmod 755 "$work" && chmod 777 "$work/src"
apt_private=(
  -q
  -o "Dir::Etc::SourceList=$work/apt/sources.list"
  -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$work/apt/lists"
  -o "Dir::Cache=$work/apt/cache"
)

echo "== fetching Debian $suite's pgbouncer source (private apt configuration)"
apt-get "${apt_private[@]}" update >/dev/null
(cd "$work/src" && apt-get "${apt_private[@]}" source --download-only pgbouncer >/dev/null)
dsc=$(ls "$work"/src/pgbouncer_*.dsc)
debian_version=$(awk '/^Version:/ {print $2; exit}' "$dsc")

echo "== unpacking pgbouncer $debian_version and applying Debian's patches"
tar -xzf "$work"/src/pgbouncer_*.orig.tar.gz -C "$work/src"
source_dir=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d -name 'pgbouncer-*' | head -n1)
tar -xJf "$work"/src/pgbouncer_*.debian.tar.xz -C "$source_dir"
if [ -f "$source_dir/debian/patches/series" ]; then
  grep -v '^\s*\(#\|$\)' "$source_dir/debian/patches/series" | while read -r name _; do
    patch -d "$source_dir" -p1 --quiet --forward <"$source_dir/debian/patches/$name"
  done
fi

echo "== building (configure, make -j$(nproc))"
(
  cd "$source_dir"
  ./configure --prefix="$prefix" --with-cares=yes --without-pam --without-systemd \
    >"$work/configure.log" 2>&1 || { tail -n 40 "$work/configure.log" >&2; exit 1; }
  make -j"$(nproc)" >"$work/make.log" 2>&1 || { tail -n 40 "$work/make.log" >&2; exit 1; }
  make install DESTDIR="$work/stage" >/dev/null
)
recent_enough "$work/stage$prefix/bin/pgbouncer" || {
  echo "error: the built pgbouncer is older than 1.21" >&2
  exit 1
}
echo "$debian_version" >"$work/stage$prefix/DEBIAN-SOURCE-VERSION"

# Swap the new tree in whole, so an interrupted build never leaves a half-installed prefix.
mkdir -p "$(dirname "$prefix")"
rm -rf "$prefix.new"
mv "$work/stage$prefix" "$prefix.new"
rm -rf "$prefix"
mv "$prefix.new" "$prefix"
echo "$("$prefix/bin/pgbouncer" --version | head -n1) built: $prefix/bin/pgbouncer"
