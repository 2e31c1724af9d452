#!/usr/bin/env bash
# Quick start: installs the Debian packages, builds sealmail into ./build, makes ./demo/
# (a config on 127.0.0.1 high ports, the built-in CA in demo/ca with a server certificate, a
# demo user with a password and a client certificate, the SQLite store in demo/data) and
# runs sealmaild in the foreground. Ctrl-C stops it. The CA's key stays in demo/ca, outside
# the server's data folder: sealmaild reads only demo/certs/client-ca.crt and .crl.
#
#   ./deploy/quickstart.sh
#   SEALMAIL_PORT_BASE=20000 ./deploy/quickstart.sh     # ports 20465, 20587, 20993, ...
#
# Delete ./demo to start again from scratch (its config keeps the ports it was made with).
#
# Setup only (what tests/integration/test_docs_demo.py uses): with SEALMAIL_DEMO_SETUP_ONLY=1
# it installs nothing, builds nothing and starts nothing: it takes sealmaild and sealctl from
# $SEALMAIL_BUILD (default ./build), prepares the demo folder and prints how to connect.
# SEALMAIL_DEMO_DIR puts the demo folder elsewhere (default ./demo).
#   SEALMAIL_DEMO_SETUP_ONLY=1 SEALMAIL_DEMO_DIR=/tmp/demo SEALMAIL_BUILD=build ./deploy/quickstart.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BASE=${SEALMAIL_PORT_BASE:-10000}
SETUP_ONLY=${SEALMAIL_DEMO_SETUP_ONLY:-}
DEMO=${SEALMAIL_DEMO_DIR:-$ROOT/demo}
mkdir -p "$DEMO"
DEMO=$(cd "$DEMO" && pwd)
# How the connection hints name the demo folder: demo/ from $ROOT, else its full path.
if [ "$DEMO" = "$ROOT/demo" ]; then SHOW=demo; else SHOW=$DEMO; fi
HOST=mail.example.test
DOMAIN=example.test
USER_ADDR="demo@$DOMAIN"

say() { printf '==> %s\n' "$*" >&2; }

if [ -z "$SETUP_ONLY" ]; then
  say "installing dependencies (deploy/install-deps.sh)"
  "$ROOT/deploy/install-deps.sh"

  say "building into ./build"
  if [ ! -f build/meson-private/coredata.dat ]; then
    meson setup build >/dev/null
  fi
  ninja -C build >/dev/null
  BUILD="$ROOT/build"
else
  BUILD=$(cd "${SEALMAIL_BUILD:-build}" && pwd)
fi
SEALMAILD="$BUILD/server/sealmaild"
SEALCTL="$BUILD/cli/sealctl"
if [ ! -x "$SEALMAILD" ] || [ ! -x "$SEALCTL" ]; then
  echo "quickstart: $SEALMAILD or $SEALCTL was not built (see ninja -C ${BUILD#"$ROOT/"})" >&2
  exit 1
fi

umask 077
mkdir -p "$DEMO/certs" "$DEMO/data"
chmod 700 "$DEMO" "$DEMO/data"
cd "$DEMO"

CONF="$DEMO/sealmail.yaml"
if [ ! -f "$CONF" ]; then
  say "writing $SHOW/sealmail.yaml (ports $((BASE + 465)), $((BASE + 587)), $((BASE + 993)), ...)"
  cat >"$CONF" <<YAML
# sealmail demo configuration made by deploy/quickstart.sh (loopback only).
hostname: $HOST
domains: [$DOMAIN]
data_dir: data                      # mail.db and the spool: sealmaild writes here
ca_dir: ca                          # the CA's key: only sealctl reads it, never sealmaild
tls:
  certificate: certs/server.crt
  key: certs/server.key
  client_ca: certs/client-ca.crt    # the CA certificate, written by sealctl cert init-ca
  crl: certs/client-ca.crl          # rewritten by sealctl cert revoke / cert crl
  min_version: "1.2"
listeners:
  - { protocol: submission, address: 127.0.0.1, port: $((BASE + 465)), tls: implicit, client_certificate: optional, certificate_login: preauth }
  - { protocol: submission, address: 127.0.0.1, port: $((BASE + 587)), tls: starttls, client_certificate: optional }
  - { protocol: imap,       address: 127.0.0.1, port: $((BASE + 993)), tls: implicit, client_certificate: optional, certificate_login: preauth }
  - { protocol: imap,       address: 127.0.0.1, port: $((BASE + 143)), tls: starttls }
  - { protocol: pop3,       address: 127.0.0.1, port: $((BASE + 995)), tls: implicit, client_certificate: optional }
  - { protocol: pop3,       address: 127.0.0.1, port: $((BASE + 110)), tls: starttls }
  - { protocol: smtp,       address: 127.0.0.1, port: $((BASE + 25)),  tls: starttls, client_certificate: required, peers: [$HOST] }
YAML
fi

# The built-in CA makes the server certificate and the demo user's client certificate.
# (A demo made before ca_dir keeps its CA in demo/data/ca; sealctl warns how to move it.)
if [ ! -f "$DEMO/ca/ca.crt" ] && [ ! -f "$DEMO/data/ca/ca.crt" ]; then
  say "making the demo CA (sealctl cert init-ca) and the server certificate"
  "$SEALCTL" -c "$CONF" cert init-ca --name "sealmail demo CA" >/dev/null
fi
if [ ! -f "$DEMO/certs/server.crt" ]; then
  "$SEALCTL" -c "$CONF" cert server "$HOST" --ip 127.0.0.1 --out "$DEMO/certs" >/dev/null
fi

PASSFILE="$DEMO/demo-password.txt"
if [ ! -f "$PASSFILE" ]; then
  PASSWORD=$(head -c 12 /dev/urandom | base64 | tr -d '/+=' | head -c 16)
  printf '%s\n' "$PASSWORD" | "$SEALCTL" -c "$CONF" user add "$USER_ADDR" --password-stdin
  (umask 077 && printf '%s\n' "$PASSWORD" >"$PASSFILE")
  # The user's client certificate; its PKCS#12 bundle uses the same demo password.
  printf '%s\n' "$PASSWORD" |
    "$SEALCTL" -c "$CONF" cert issue "$USER_ADDR" --out "$DEMO/client" --p12-password-stdin >/dev/null
fi
PASSWORD=$(cat "$PASSFILE")

"$SEALMAILD" -c "$CONF" --check
port_of() { # protocol tls -> port from the config
  awk -v p="$1" -v t="$2" '$0 ~ "protocol: "p"," && $0 ~ "tls: "t"[ ,}]" {
    match($0, /port: [0-9]+/); print substr($0, RSTART + 6, RLENGTH - 6); exit }' "$CONF"
}
IMAPS=$(port_of imap implicit)
SUBMISSION=$(port_of submission implicit)
POP3S=$(port_of pop3 implicit)
IMAP_STARTTLS=$(port_of imap starttls)


cat <<INFO

sealmail demo: everything is in ${SHOW/#demo/./demo} (delete it to start over).
  user:      $USER_ADDR
  password:  $PASSWORD   (also in $SHOW/demo-password.txt)
  CA:        $SHOW/certs/client-ca.crt (the server certificate names $HOST and 127.0.0.1)
  client:    $SHOW/client/$USER_ADDR.crt, .key and .p12 (PKCS#12 password: the same)

Try, in another terminal, from $ROOT:
  openssl s_client -connect 127.0.0.1:$IMAPS -CAfile $SHOW/certs/client-ca.crt -quiet -crlf
  openssl s_client -connect 127.0.0.1:$IMAP_STARTTLS -starttls imap -CAfile $SHOW/certs/client-ca.crt -crlf
  gnutls-cli --x509cafile $SHOW/certs/client-ca.crt --port $POP3S 127.0.0.1
  curl --cacert $SHOW/certs/client-ca.crt -u '$USER_ADDR:$PASSWORD' imaps://127.0.0.1:$IMAPS/
  swaks --server 127.0.0.1:$SUBMISSION --tls-on-connect --auth-user $USER_ADDR --auth-password '$PASSWORD' --from $USER_ADDR --to $USER_ADDR
  curl --cacert $SHOW/certs/client-ca.crt --cert $SHOW/client/$USER_ADDR.crt --key $SHOW/client/$USER_ADDR.key \\
       --crlf --mail-from $USER_ADDR --mail-rcpt $USER_ADDR -T README.md smtps://127.0.0.1:$SUBMISSION  # certificate login

INFO
if [ -n "$SETUP_ONLY" ]; then
  printf 'Start it with: %s -c %s\n' "$SEALMAILD" "$CONF"
  exit 0
fi
cat <<INFO
Starting sealmaild in the foreground (Ctrl-C to stop, kill -HUP to reload certificates):
INFO
exec "$SEALMAILD" -c "$CONF"
