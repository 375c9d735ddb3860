#!/usr/bin/env bash
# The Debian packages `make run`, `make test` and CI need. Installs the missing ones when it can (as
# root, or with password-less sudo); otherwise stops at once, printing the one command that would.
#   scripts/system-packages.sh run    libmagic, Python's venv, ClamAV (unless SCANNER=disabled)
#   scripts/system-packages.sh test   the same, plus Chromium and Node.js with npm
#   scripts/system-packages.sh ci     the same as test, plus PostgreSQL, Redis and make
#   scripts/system-packages.sh bench  the same as run, plus wrk and Node.js with npm (bench/presign)
set -euo pipefail
target="${1:-test}"
case "$target" in run|test|ci|bench) ;; *) echo "usage: $0 run|test|ci|bench" >&2; exit 2 ;; esac

need=()
has() { command -v "$1" >/dev/null 2>&1; }

python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
/sbin/ldconfig -p 2>/dev/null | grep 'libmagic.so.1' >/dev/null || need+=(libmagic1)  # not grep -q: an early exit would SIGPIPE ldconfig and fail the pipe
[ -f /usr/share/misc/magic.mgc ] || [ -f /usr/lib/file/magic.mgc ] || need+=(libmagic-mgc)
if [ "$target" != run ] || [ "${SCANNER:-clamd}" != disabled ]; then
  has clamd || [ -x /usr/sbin/clamd ] || need+=(clamav-daemon)
  has sigtool || need+=(clamav)
fi
if [ "$target" != run ]; then
  [ -x /usr/bin/chromium ] || need+=(chromium)
  has npm || need+=(nodejs npm)
fi
if [ "$target" = bench ]; then
  has wrk || need+=(wrk)
  has npm || need+=(nodejs npm)
  has taskset || need+=(util-linux)
fi
if [ "$target" = ci ]; then
  has redis-server || need+=(redis-server)
  has pg_ctlcluster || need+=(postgresql)
  has make || need+=(make)
fi
[ ${#need[@]} -eq 0 ] && exit 0

install="apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${need[*]}"
if has apt-get && [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif has apt-get && has sudo && sudo -n true 2>/dev/null; then
  sudo="sudo"
else
  echo "Satchel needs these Debian packages: ${need[*]}" >&2
  [ "$target" = run ] && echo "(or run without virus scanning: SCANNER=disabled make run)" >&2
  echo "Install them with:" >&2
  echo "  sudo sh -c '$install'" >&2
  exit 1
fi
echo "installing Debian packages: ${need[*]}"
$sudo sh -c "$install" >/dev/null
# The package may start its own ClamAV daemons; Satchel starts the clamd it needs itself.
$sudo pkill -x freshclam 2>/dev/null || true
