/* Prints the configuration reference generated from config/config_keys.c: Markdown
 * (docs/configuration.md), or with --man DATE VERSION the sealmail.yaml(5) page. */
#include <stdio.h>
#include <string.h>

#include "config/config.h"

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--man") == 0)
		cfg_print_manpage(stdout, argv[2], argv[3]);
	else if (argc == 1)
		cfg_print_reference(stdout);
	else {
		fprintf(stderr, "usage: sealmail-config-reference [--man DATE VERSION]\n");
		return 2;
	}
	return fflush(stdout) == 0 ? 0 : 1;
}
