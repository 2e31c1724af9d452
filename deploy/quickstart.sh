#!/usr/bin/env bash
# Quick start: installs the Debian packages, builds sealmail into ./build, makes ./demo/
# (a private CA, a server certificate, a config on 127.0.0.1 high ports, a demo user when
# sealctl is built) and runs sealmaild in the foreground. Ctrl-C stops it.
#
#   ./deploy/quickstart.sh
#   SEALMAIL_PORT_BASE=20000 ./deploy/quickstart.sh     # ports 20465, 20587, 20993, ...
#
# Delete ./demo to start again from scratch (its config keeps the ports it was made with).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BASE=${SEALMAIL_PORT_BASE:-10000}
DEMO="$ROOT/demo"
HOST=mail.example.test
DOMAIN=example.test
USER_ADDR="demo@$DOMAIN"

say() { printf '==> %s\n' "$*" >&2; }

say "installing dependencies (deploy/install-deps.sh)"
"$ROOT/deploy/install-deps.sh"

say "building into ./build"
if [ ! -f build/meson-private/coredata.dat ]; then
  meson setup build >/dev/null
fi
ninja -C build >/dev/null
SEALMAILD="$ROOT/build/server/sealmaild"
SEALCTL="$ROOT/build/cli/sealctl"
if [ ! -x "$SEALMAILD" ]; then
  echo "quickstart: $SEALMAILD was not built (see ninja -C build)" >&2
  exit 1
fi

mkdir -p "$DEMO/certs"
chmod 700 "$DEMO"
cd "$DEMO/certs"
if [ ! -f ca.crt ]; then
  say "making a demo CA and server certificate in demo/certs (certtool)"
  umask 077
  certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --outfile ca.key 2>/dev/null
  printf 'cn = "sealmail demo CA"\nca\ncert_signing_key\ncrl_signing_key\nexpiration_days = 3650\n' >ca.tmpl
  certtool --generate-self-signed --load-privkey ca.key --template ca.tmpl --outfile ca.crt 2>/dev/null
  certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --outfile server.key 2>/dev/null
  printf 'cn = "%s"\ndns_name = "%s"\ndns_name = "localhost"\nip_address = "127.0.0.1"\ntls_www_server\nsigning_key\nencryption_key\nexpiration_days = 825\n' \
    "$HOST" "$HOST" >server.tmpl
  certtool --generate-certificate --load-privkey server.key --load-ca-certificate ca.crt \
    --load-ca-privkey ca.key --template server.tmpl --outfile server.crt 2>/dev/null
  # A client certificate for the listeners that require one (SMTP from peer servers).
  certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --outfile client.key 2>/dev/null
  printf 'cn = "demo"\nemail = "%s"\ntls_www_client\nsigning_key\nexpiration_days = 825\n' \
    "$USER_ADDR" >client.tmpl
  certtool --generate-certificate --load-privkey client.key --load-ca-certificate ca.crt \
    --load-ca-privkey ca.key --template client.tmpl --outfile client.crt 2>/dev/null
  umask 022
  chmod 644 ca.crt server.crt client.crt
fi
cd "$DEMO"

CONF="$DEMO/sealmail.yaml"
if [ ! -f "$CONF" ]; then
  say "writing demo/sealmail.yaml (ports $((BASE + 465)), $((BASE + 587)), $((BASE + 993)), ...)"
  cat >"$CONF" <<YAML
# sealmail demo configuration made by deploy/quickstart.sh (loopback only).
hostname: $HOST
domains: [$DOMAIN]
data_dir: data
tls:
  certificate: certs/server.crt
  key: certs/server.key
  client_ca: certs/ca.crt
  min_version: "1.2"
listeners:
  - { protocol: submission, address: 127.0.0.1, port: $((BASE + 465)), tls: implicit, client_certificate: optional }
  - { protocol: submission, address: 127.0.0.1, port: $((BASE + 587)), tls: starttls, client_certificate: optional }
  - { protocol: imap,       address: 127.0.0.1, port: $((BASE + 993)), tls: implicit }
  - { protocol: imap,       address: 127.0.0.1, port: $((BASE + 143)), tls: starttls }
  - { protocol: pop3,       address: 127.0.0.1, port: $((BASE + 995)), tls: implicit }
  - { protocol: pop3,       address: 127.0.0.1, port: $((BASE + 110)), tls: starttls }
  - { protocol: smtp,       address: 127.0.0.1, port: $((BASE + 25)),  tls: starttls, client_certificate: required }
YAML
fi
mkdir -p "$DEMO/data"
chmod 700 "$DEMO/data"

"$SEALMAILD" -c "$CONF" --check
port_of() { # protocol tls -> port from the config
  awk -v p="$1" -v t="$2" '$0 ~ "protocol: "p"," && $0 ~ "tls: "t"[ ,}]" {
    match($0, /port: [0-9]+/); print substr($0, RSTART + 6, RLENGTH - 6); exit }' "$CONF"
}
IMAPS=$(port_of imap implicit)
SUBMISSION=$(port_of submission implicit)
POP3S=$(port_of pop3 implicit)
IMAP_STARTTLS=$(port_of imap starttls)

PASSFILE="$DEMO/demo-password.txt"
if [ -x "$SEALCTL" ]; then
  if [ ! -f "$PASSFILE" ]; then
    PASSWORD=$(head -c 12 /dev/urandom | base64 | tr -d '/+=' | head -c 16)
    if printf '%s\n' "$PASSWORD" | "$SEALCTL" -c "$CONF" user add "$USER_ADDR" --password-stdin; then
      (umask 077 && printf '%s\n' "$PASSWORD" >"$PASSFILE")
    else
      echo "quickstart: could not add $USER_ADDR (see the message above)" >&2
    fi
  fi
else
  echo "quickstart: note: build/cli/sealctl is not built yet, so no demo user was made" >&2
fi
PASSWORD=$(cat "$PASSFILE" 2>/dev/null || echo "<no demo user>")

cat <<INFO

sealmail demo: everything is in ./demo (delete it to start over).
  user:      $USER_ADDR
  password:  $PASSWORD   (also in demo/demo-password.txt)
  CA:        demo/certs/ca.crt (the server certificate names 127.0.0.1, localhost, $HOST)
  client:    demo/certs/client.crt + client.key (for listeners that ask for a certificate)

Try, in another terminal, from $ROOT:
  openssl s_client -connect 127.0.0.1:$IMAPS -CAfile demo/certs/ca.crt -quiet -crlf
  openssl s_client -connect 127.0.0.1:$IMAP_STARTTLS -starttls imap -CAfile demo/certs/ca.crt -crlf
  gnutls-cli --x509cafile demo/certs/ca.crt --port $POP3S 127.0.0.1
  curl --cacert demo/certs/ca.crt -u '$USER_ADDR:$PASSWORD' imaps://127.0.0.1:$IMAPS/
  swaks --server 127.0.0.1:$SUBMISSION --tls-on-connect --auth-user $USER_ADDR --auth-password '$PASSWORD' --to $USER_ADDR

Starting sealmaild in the foreground (Ctrl-C to stop, kill -HUP to reload certificates):
INFO
exec "$SEALMAILD" -c "$CONF"
