#!/usr/bin/env bash
# Installs what Nattero's local stack needs on Debian 12, and nothing that is already there.
#   - Debian packages: PostgreSQL 15 server + headers, Mosquitto (+clients), pgBackRest (backups),
#     cmake, build tools,
#     Chromium + driver for the browser tests.
#   - TimescaleDB (Apache edition) built once from Debian 13's source package, because
#     Debian 12 ships no binary package for it. Reused on every later run.
# Safe to run again: every step checks first.
set -euo pipefail

PG_MAJOR=${PG_MAJOR:-15}
PG_CONFIG=/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config
BUILD_DIR=${NATTERO_BUILD_DIR:-/var/cache/nattero/build}
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

log() { printf '[install] %s\n' "$*" >&2; }

want_packages=(
  "postgresql-${PG_MAJOR}" "postgresql-server-dev-${PG_MAJOR}" postgresql-client
  mosquitto mosquitto-clients
  pgbackrest
  postgresql-${PG_MAJOR}-auto-failover pg-auto-failover-cli haproxy
  cmake build-essential dpkg-dev libssl-dev libkrb5-dev
  chromium chromium-driver
  poppler-utils
)
# npm for the dashboard's pinned test tools (axe-core); a machine with Node.js already has it.
command -v npm >/dev/null 2>&1 || want_packages+=(npm)
missing=()
for p in "${want_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# The distribution's own services are not ours: Nattero starts private instances on its own
# ports. We leave running system services alone.

ext_dir=$($PG_CONFIG --sharedir)/extension
if ls "$ext_dir"/timescaledb.control >/dev/null 2>&1; then
  log "TimescaleDB already installed ($(grep default_version "$ext_dir/timescaledb.control"))"
  exit 0
fi

log "building TimescaleDB (Apache edition) from Debian 13 sources into $BUILD_DIR"
apt_dir="$BUILD_DIR/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$BUILD_DIR/src"
cat > "$apt_dir/sources.list" <<SRC
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
SRC
apt_opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o "Dir::Etc::sourceparts=-"
          -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::archives=$apt_dir/archives"
          -o "APT::Get::List-Cleanup=0")
apt-get "${apt_opts[@]}" update -qq >&2
cd "$BUILD_DIR/src"
if ! ls -d timescaledb-*/ >/dev/null 2>&1; then
  apt-get "${apt_opts[@]}" source --download-only timescaledb >&2
  dpkg-source -x --no-check timescaledb_*.dsc >&2
fi
src=$(ls -d "$BUILD_DIR"/src/timescaledb-*/ | head -n1)
cd "$src"
rm -rf build
./bootstrap -DAPACHE_ONLY=1 -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF \
  -DPG_CONFIG="$PG_CONFIG" >&2
cd build
make -j"$(nproc)" >&2
$SUDO make install >&2
log "TimescaleDB installed"
