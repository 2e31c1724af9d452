/*
 * sealmail.yaml(5): the configuration reference as a manual page, from the same key table
 * as docs/configuration.md (config_keys.c), so the two never disagree. The key
 * documentation is Markdown-light: `code` becomes bold; roff's special characters are
 * escaped.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "config/config_private.h"

/* Text for roff: backslashes escaped, `code` in bold, a leading '.' or '\'' guarded. */
static void roff_text(FILE *fp, const char *s)
{
	bool code = false;
	bool line_start = true;
	for (const char *p = s; *p != '\0'; p++) {
		if (line_start && (*p == '.' || *p == '\''))
			fputs("\\&", fp);
		line_start = false;
		switch (*p) {
		case '\\':
			fputs("\\e", fp);
			break;
		case '`':
			fputs(code ? "\\fR" : "\\fB", fp);
			code = !code;
			break;
		case '-':
			fputs("\\-", fp);
			break;
		case '\n':
			fputc('\n', fp);
			line_start = true;
			break;
		default:
			fputc(*p, fp);
		}
	}
	if (code)
		fputs("\\fR", fp);
}

static void man_key(FILE *fp, const struct cfg_key *key)
{
	fputs(".TP\n.B ", fp);
	roff_text(fp, key->path);
	fputs("\n", fp);
	roff_text(fp, cfg_key_type_doc(key));
	if (key->type == CFG_TYPE_ENUM)
		for (size_t i = 0; key->values[i] != NULL; i++) {
			fputs(i == 0 ? " " : ", ", fp);
			fputs("\\fB", fp);
			roff_text(fp, key->values[i]);
			fputs("\\fR", fp);
		}
	if (key->type == CFG_TYPE_UINT || key->type == CFG_TYPE_U64 || key->type == CFG_TYPE_PORT)
		fprintf(fp, " from %" PRIu64 " to %" PRIu64, key->min, key->max);
	fputs(".\n", fp);
	if (key->required) {
		fputs("Required.\n", fp);
	} else if (key->def != NULL) {
		fputs("Default: \\fB", fp);
		roff_text(fp, key->def);
		fputs("\\fR.\n", fp);
	} else if (key->def_doc != NULL) {
		fputs("Default: ", fp);
		roff_text(fp, key->def_doc);
		fputs("\n", fp);
	}
	fputs(".br\n", fp);
	roff_text(fp, key->doc);
	fputs("\n", fp);
}

void cfg_print_manpage(FILE *fp, const char *date, const char *version)
{
	fprintf(fp,
	        ".\\\" Generated from config/config_keys.c by sealmail-config-reference --man.\n"
	        ".TH SEALMAIL.YAML 5 \"%s\" \"sealmail %s\" \"File Formats\"\n",
	        date, version);
	fputs(".SH NAME\nsealmail.yaml \\- configuration of the sealmail mail server\n"
	      ".SH SYNOPSIS\n.B /etc/sealmail/sealmail.yaml\n"
	      ".SH DESCRIPTION\n"
	      "The configuration of \\fBsealmaild\\fR(8) and \\fBsealctl\\fR(8) is one YAML file, "
	      "given with \\fB\\-c\\fR \\fIFILE\\fR. Block and flow styles both work. Relative "
	      "paths are relative to the folder of the file. An unknown key is an error, never "
	      "ignored: \\fBsealmaild \\-c\\fR \\fIFILE\\fR \\fB\\-\\-check\\fR prints every "
	      "problem as \\fIFILE\\fR:\\fILINE\\fR: \\fIKEY\\fR: what is wrong (list items are "
	      "counted from 0, as in \\fBlisteners[0].port\\fR).\n"
	      ".PP\n"
	      "A key written with an empty value counts as not written. Numbers are plain "
	      "decimal numbers without units or quotes.\n",
	      fp);
	for (size_t i = 0; i < cfg_n_keys; i++) {
		const struct cfg_key *key = &cfg_keys[i];
		bool top = strchr(key->path, '.') == NULL;
		if (i == 0)
			fputs(".SH TOP-LEVEL KEYS\n", fp);
		if (top && (key->type == CFG_TYPE_SECTION || key->type == CFG_TYPE_LIST)) {
			fputs(".SH ", fp);
			roff_text(fp, key->path);
			fputs("\n", fp);
			roff_text(fp, key->doc);
			fputs(key->required ? " Required.\n" : "\n", fp);
			continue;
		}
		man_key(fp, key);
	}
	fputs(".SH EXAMPLE\n.nf\n"
	      "hostname: mail.corp.example\n"
	      "domains: [corp.example]\n"
	      "data_dir: /var/lib/sealmail\n"
	      "tls:\n"
	      "  certificate: /etc/sealmail/server.crt\n"
	      "  key: /etc/sealmail/server.key\n"
	      "listeners:\n"
	      "  \\- { protocol: submission, address: 0.0.0.0, port: 465, tls: implicit }\n"
	      "  \\- { protocol: imap, address: 0.0.0.0, port: 993, tls: implicit }\n"
	      ".fi\n"
	      ".SH FILES\n"
	      ".TP\n.I /etc/sealmail/sealmail.yaml\nThe configuration read by the packaged "
	      "service.\n"
	      ".SH SEE ALSO\n\\fBsealmaild\\fR(8), \\fBsealctl\\fR(8)\n",
	      fp);
}
