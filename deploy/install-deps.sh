#!/usr/bin/env bash
# Install every Debian 12 package that sealmail's build, tests and quick start need.
#
# Idempotent and non-interactive. When every package is already installed it does nothing
# (fast for developers); with SEALMAIL_FORCE_APT=1 or CI=true it always runs apt-get update
# and install (a fresh CI machine has none of them). Packages already installed are never
# upgraded (--no-upgrade). Runs apt through sudo when not root.
set -euo pipefail

PACKAGES=(
  build-essential meson ninja-build pkg-config
  libgnutls28-dev nettle-dev gnutls-bin libuv1-dev libsqlite3-dev sqlite3 libyaml-dev libcriterion-dev
  libgmime-3.0-dev libjson-glib-dev libgsasl-dev libc-ares-dev libidn2-dev libcrypt-dev zlib1g-dev
  # HTTP/1.1 request parsing for https listeners (server/https/).
  libhttp-parser-dev
  python3 python3-pytest python3-pytest-xdist python3-yaml curl swaks libnet-ssleay-perl fetchmail openssl nodejs npm
  # The fuzz step of tests/run.sh: clang, and the libFuzzer/ASan/UBSan runtimes, which
  # clang only recommends (so --no-install-recommends would leave them out).
  clang libclang-rt-14-dev
  # Real mail clients the integration tests send and synchronise with; isync's Cyrus SASL
  # has SCRAM only with libsasl2-modules, which it merely recommends.
  msmtp neomutt isync libsasl2-modules
  # GNU SASL's client: SCRAM-SHA-256-PLUS with a real tls-exporter binding (Python cannot).
  gsasl
  # groff renders the manual pages in their test; the package test builds the .deb.
  groff-base dpkg-dev debhelper fakeroot lintian
  # The /metrics test reads the text with Prometheus' own parser.
  python3-prometheus-client
  # The PostgreSQL store backend (storage/pg/, libpq) and its tests, which start a server
  # of their own from these binaries (tests/tools/pg_harness.sh); the system-wide service
  # the package installs is never used.
  libpq-dev postgresql
)

installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

missing=()
for p in "${PACKAGES[@]}"; do
  if installed "$p"; then
    continue
  fi
  # NodeSource's nodejs ships npm itself and conflicts with Debian's npm package.
  if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then
    continue
  fi
  missing+=("$p")
done

force=${SEALMAIL_FORCE_APT:-}
[ "${CI:-}" = true ] && force=1
if [ ${#missing[@]} -eq 0 ] && [ -z "$force" ]; then
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: apt-get update" >&2
"${SUDO[@]}" apt-get update -qq >/dev/null

# Keep only packages this machine's apt knows about (and that do not clash with what is
# already here, e.g. npm beside NodeSource's nodejs): warn about the rest.
want=()
for p in "${PACKAGES[@]}"; do
  if [ "$p" = npm ] && ! installed npm && command -v npm >/dev/null 2>&1; then
    continue
  fi
  cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
  if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
    if ! installed "$p"; then
      echo "install-deps: warning: no apt candidate for $p; skipping it" >&2
    fi
    continue
  fi
  want+=("$p")
done

echo "install-deps: apt-get install ${#want[@]} packages" >&2
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends --no-upgrade \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  "${want[@]}" >/dev/null
