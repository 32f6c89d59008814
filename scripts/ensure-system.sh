#!/usr/bin/env bash
# Make sure the OS has what sitewatch needs: PostgreSQL with PostGIS (unless DATABASE_URL is
# set) and, for the test suite, Chromium with a CJK font. Installs Debian packages when it can
# (root or passwordless sudo); otherwise stops with one line saying what to install.
#   usage: scripts/ensure-system.sh [run|test]
set -euo pipefail
purpose=${1:-run}

need=()
if [ -z "${DATABASE_URL:-}" ]; then
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1 || need+=(postgresql-15-postgis-3)
fi
if [ "$purpose" = test ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  fc-list 2>/dev/null | grep -qi 'Noto Sans CJK' || need+=(fonts-noto-cjk)
fi
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "sitewatch needs OS packages: run 'sudo apt-get install -y ${need[*]}' (or set DATABASE_URL to a PostGIS server) and try again." >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "sitewatch needs: ${need[*]} (install them with your package manager, or set DATABASE_URL)." >&2
  exit 1
fi
echo "installing OS packages: ${need[*]}"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
