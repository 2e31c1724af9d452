/*
 * libFuzzer target: the IMAP command reader and argument parser (server/imap/imap_parser.h).
 * The input is split at LF into lines given to the reader; when it asks for a literal, the
 * next bytes of the input are the literal (some literals are diverted, as APPEND spools
 * them). Every complete command is parsed, its astrings duplicated, and each atom is also
 * tried as a sequence set. A second pass parses the raw input as one buffer.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "server/imap/imap_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const struct imap_arg *v, size_t n, unsigned depth)
{
	if (depth > IMAP_PARSE_MAX_DEPTH + 1)
		abort();
	for (size_t i = 0; i < n; i++) {
		const struct imap_arg *a = &v[i];
		if (a->type == IMAP_ARG_LIST) {
			walk(a->list, a->n, depth + 1);
			continue;
		}
		(void)imap_arg_is(a, "UID");
		free(imap_arg_dup(a));
		if (a->type == IMAP_ARG_ATOM) {
			struct imap_seqset set;
			memset(&set, 0, sizeof(set));
			if (imap_seqset_parse(a->s, a->len, &set) == 0) {
				(void)imap_seqset_contains(&set, 1, 10);
				(void)imap_seqset_contains(&set, UINT32_MAX, UINT32_MAX);
			}
			imap_seqset_free(&set);
		}
	}
}

static void parse(char *cmd, size_t len)
{
	struct imap_args args;
	const char *error = NULL;
	memset(&args, 0, sizeof(args));
	if (imap_parse(cmd, len, &args, &error) == 0)
		walk(args.v, args.n, 0);
	else if (error == NULL)
		abort();
	imap_args_free(&args);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool divert = (data[0] & 1) != 0;
	data++;
	size--;

	struct imap_reader r;
	imap_reader_init(&r, 4096);
	size_t off = 0;
	while (off < size) {
		const uint8_t *lf = memchr(data + off, '\n', size - off);
		size_t len = lf != NULL ? (size_t)(lf - (data + off)) : size - off;
		size_t line_len = len > 0 && data[off + len - 1] == '\r' ? len - 1 : len;
		struct imap_literal lit;
		int rc = imap_reader_line(&r, (const char *)data + off, line_len, &lit);
		off += len + (lf != NULL ? 1 : 0);
		if (rc == 0) {
			size_t n = lit.size < size - off ? (size_t)lit.size : size - off;
			if (lit.size == 0)
				continue;
			if (divert)
				(void)imap_reader_divert(&r);
			else if (imap_reader_bytes(&r, (const char *)data + off, n) != 0)
				abort(); /* the announcement was accepted */
			off += n;
			continue;
		}
		if (rc == 1) {
			parse(r.cmd.data, r.cmd.len);
			imap_reader_reset(&r);
		}
	}
	imap_reader_free(&r);

	char *copy = xmalloc(size + 1);
	memcpy(copy, data, size);
	copy[size] = '\0';
	parse(copy, size);
	free(copy);
	return 0;
}
