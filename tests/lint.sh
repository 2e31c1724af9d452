#!/usr/bin/env bash
# House rules a machine can check (docs/hacking.md):
#   - banned functions: strcpy strcat sprintf vsprintf strtok atoi atol sscanf gets
#   - dependencies point one way (docs/design.md, "Layers"): only config/ includes yaml.h;
#     only storage/sqlite/ (and tests, benchmarks) include sqlite3.h, only storage/pg/ (and
#     tests) libpq-fe.h; storage/ never
#     includes uv.h or server/ headers, nor do certs/, config/, common/ and cli/; only the
#     top of server/ (main.c, server.c, listener.c, conn.c, conn_info.c, metrics_scrape.c) includes server_private.h;
#     protocol code (server/smtp, server/imap, server/pop3, server/https) never includes
#     uv.h, GnuTLS or sqlite3.h; only server/https (and tests, fuzz targets) includes
#     http_parser.h; only server/compress_pipe.h (and tests, fuzz targets) includes zlib.h.
# Prints each violation as file:line: rule and exits 1 if there is any.
set -u
cd "$(dirname "$0")/.."

files=$(git ls-files '*.c' '*.h' 2>/dev/null)
[ -n "$files" ] || files=$(find . -name '*.c' -o -name '*.h' | sed 's|^\./||')

check_file() {
	local f=$1
	grep -nE '(^|[^_a-zA-Z0-9.>])(strcpy|strcat|sprintf|vsprintf|strtok|atoi|atol|sscanf|gets)\(' "$f" |
		grep -vE '^[0-9]+:\s*(\*|/\*|//)' |
		sed -E "s|^([0-9]+):.*|$f:\1: banned function|"
	case "$f" in
	config/*) ;;
	*) grep -nE '#include\s*<yaml\.h>' "$f" | sed -E "s|^([0-9]+):.*|$f:\1: yaml.h outside config/|" ;;
	esac
	case "$f" in
	server/compress_pipe.h | tests/* | fuzz/*) ;;
	*) grep -nE '#include\s*<zlib\.h>' "$f" |
		sed -E "s|^([0-9]+):.*|$f:\1: zlib.h outside server/compress_pipe.h|" ;;
	esac
	case "$f" in
	server/https/* | tests/* | fuzz/*) ;;
	*) grep -nE '#include\s*<http_parser\.h>' "$f" |
		sed -E "s|^([0-9]+):.*|$f:\1: http_parser.h outside server/https/|" ;;
	esac
	case "$f" in
	storage/pg/* | tests/*) ;;
	*) grep -nE '#include\s*<libpq-fe\.h>' "$f" |
		sed -E "s|^([0-9]+):.*|$f:\1: libpq-fe.h outside storage/pg/|" ;;
	esac
	case "$f" in
	storage/sqlite/* | bench/* | tests/*) ;;
	*) grep -nE '#include\s*<sqlite3\.h>' "$f" |
		sed -E "s|^([0-9]+):.*|$f:\1: sqlite3.h outside storage/sqlite/|" ;;
	esac
	case "$f" in
	storage/*)
		grep -nE '#include\s*(<uv\.h>|"server/)' "$f" |
			sed -E "s|^([0-9]+):.*|$f:\1: storage includes libuv or server/|" ;;
	certs/* | config/* | common/* | cli/*)
		grep -nE '#include\s*"server/' "$f" |
			sed -E "s|^([0-9]+):.*|$f:\1: a layer below server/ includes server/|" ;;
	esac
	case "$f" in
	server/main.c | server/server.c | server/listener.c | server/conn.c | server/conn_info.c | server/metrics_scrape.c | server/server_private.h) ;;
	*) grep -nE '#include\s*"server/server_private\.h"' "$f" |
		sed -E "s|^([0-9]+):.*|$f:\1: only the top of server/ includes server_private.h|" ;;
	esac
	case "$f" in
	server/smtp/* | server/imap/* | server/pop3/* | server/https/*)
		grep -nE '#include\s*(<uv\.h>|<gnutls/|<sqlite3\.h>|"server/server_private\.h")' "$f" |
			sed -E "s|^([0-9]+):.*|$f:\1: protocol code includes libuv, GnuTLS, SQLite or server internals|" ;;
	esac
}

out=$(for f in $files; do [ -f "$f" ] && check_file "$f"; done)
if [ -n "$out" ]; then
	echo "$out"
	echo "lint: $(echo "$out" | wc -l) violation(s) of house rules, docs/hacking.md"
	exit 1
fi
echo "lint: ok ($(echo "$files" | wc -w) files)"
