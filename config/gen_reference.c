/* Prints the configuration reference (Markdown) generated from config/config_keys.c. */
#include <stdio.h>

#include "config/config.h"

int main(void)
{
	cfg_print_reference(stdout);
	return fflush(stdout) == 0 ? 0 : 1;
}
