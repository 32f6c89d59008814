#!/usr/bin/env bash
# Make sure the OS has what sitewatch needs: PostgreSQL with PostGIS (unless DATABASE_URL is
# set) and, for the test suite, Chromium with a CJK font. Installs Debian packages when it can
# (root or passwordless sudo); otherwise stops with one line saying what to install.
#   usage: scripts/ensure-system.sh [venv|run|test]
set -euo pipefail
purpose=${1:-run}

need=()
if [ "$purpose" = venv ]; then
  # Debian splits venv/ensurepip out of python3.
  "${PYTHON:-python3}" -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
elif [ -z "${DATABASE_URL:-}" ]; then
  # The installed server's major version, else the distribution's default one.
  pgver=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sed 's#.*/postgresql/\([0-9]*\)/.*#\1#' | sort -n | tail -1)
  [ -n "$pgver" ] || pgver=$(apt-cache depends postgresql 2>/dev/null | sed -n 's/.*Depends: postgresql-\([0-9][0-9]*\)$/\1/p' | head -1)
  [ -n "$pgver" ] || pgver=15
  [ -e "/usr/share/postgresql/$pgver/extension/postgis.control" ] || need+=("postgresql-$pgver-postgis-3")
fi
if [ "$purpose" = test ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  compgen -G '/usr/share/fonts/opentype/noto/NotoSansCJK*' >/dev/null || need+=(fonts-noto-cjk)
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
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
