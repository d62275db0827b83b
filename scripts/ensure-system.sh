#!/usr/bin/env bash
# Makes sure the machine has what the cockpit needs from the OS. Idempotent and quiet when all
# is there. Usage: scripts/ensure-system.sh [--browser]
#   always:    PostgreSQL server + PostGIS (skipped when COCKPIT_DATABASE_URL points elsewhere);
#              Pango (WeasyPrint typesets the PDF reports with it) and a CJK font (reports, screenshots)
#   --browser: Debian's chromium + chromium-driver, for the browser tests
set -euo pipefail

want_browser=0
[ "${1:-}" = "--browser" ] && want_browser=1

missing=()
if [ -z "${COCKPIT_DATABASE_URL:-}" ]; then
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
  if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
    missing+=(postgresql)
  fi
  have_postgis=0
  for control in /usr/share/postgresql/*/extension/postgis.control; do
    [ -e "$control" ] && have_postgis=1
  done
  [ $have_postgis = 1 ] || missing+=(postgis)
fi
# `cockpit report --format pdf`: WeasyPrint loads Pango through its C library
for lib in libpango-1.0-0:libpango-1.0.so.0 libpangoft2-1.0-0:libpangoft2-1.0.so.0; do
  ldconfig -p 2>/dev/null | grep -q "${lib#*:}" || missing+=("${lib%%:*}")
done
# a CJK font so PDF reports and screenshots of the Chinese UI show characters, not boxes
fc-list :lang=zh 2>/dev/null | grep -q . || missing+=(fonts-wqy-microhei)
if [ $want_browser = 1 ]; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
fi
[ ${#missing[@]} = 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "cockpit: missing system packages: ${missing[*]} — install them (Debian/Ubuntu: apt-get install postgresql postgresql-<version>-postgis-3 libpango-1.0-0 libpangoft2-1.0-0 fonts-wqy-microhei chromium chromium-driver) or set COCKPIT_DATABASE_URL" >&2
  exit 1
fi

echo "cockpit: installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
pkgs=()
for m in "${missing[@]}"; do
  case $m in
    postgresql) pkgs+=(postgresql) ;;
    postgis) ;;  # needs the server's major version: resolved below
    *) pkgs+=("$m") ;;
  esac
done
[ ${#pkgs[@]} = 0 ] || apt-get install -y -qq "${pkgs[@]}" >/dev/null
if [[ " ${missing[*]} " == *" postgis "* ]]; then
  ver=$(ls /usr/lib/postgresql | sort -V | tail -n1)
  apt-get install -y -qq "postgresql-${ver}-postgis-3" >/dev/null
fi
