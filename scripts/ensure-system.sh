#!/usr/bin/env bash
# Install the system packages the project needs when they are missing (Debian/Ubuntu, as root).
# Usage: scripts/ensure-system.sh redis|chromium ...
set -eu
updated=0
apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: $1 is missing. Install it with: sudo apt-get install -y $2" >&2
    exit 1
  fi
  if [ "$updated" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null; updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $2 >/dev/null
}
for need in "$@"; do
  case "$need" in
    redis) command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || apt_install redis-server "redis-server redis-tools" ;;
    chromium) [ -x /usr/bin/chromium ] || apt_install chromium "chromium fonts-dejavu-core" ;;
    postgres)
      # The ledger tests also run on PostgreSQL at 127.0.0.1:5432 (trust auth for the local user).
      if ! (command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432); then
        command -v pg_ctlcluster >/dev/null 2>&1 || apt_install postgresql "postgresql"
        for version in $(ls /etc/postgresql 2>/dev/null); do
          pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
        done
      fi ;;
    *) echo "unknown requirement $need" >&2; exit 2 ;;
  esac
done
