/*
 * The stored MIME structure, read back (see imap_bodystruct.h).
 */
#include <errno.h>
#include <string.h>

#include "server/imap/imap_bodystruct.h"

#define BS_VERSION 2 /* storage/sqlite/store_private.h, STORE_MIME_VERSION */

int imap_bs_parse(struct imap_bs *bs, const char *json, size_t len)
{
	bs->root = NULL;
	if (json == NULL || len == 0 || len > IMAP_BS_MAX_JSON)
		return -EINVAL;
	/* A parser is kept from one message to the next: making one costs about as much as
	 * parsing a small structure. */
	if (bs->parser == NULL)
		bs->parser = json_parser_new_immutable();
	if (!json_parser_load_from_data(bs->parser, json, (gssize)len, NULL))
		return -EINVAL;
	JsonNode *root = json_parser_get_root(bs->parser);
	if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root))
		return -EINVAL;
	JsonObject *o = json_node_get_object(root);
	if (imap_bs_int(o, "v") != BS_VERSION)
		return -EINVAL;
	bs->root = o;
	return 0;
}

void imap_bs_free(struct imap_bs *bs)
{
	if (bs->parser != NULL)
		g_object_unref(bs->parser);
	memset(bs, 0, sizeof(*bs));
}

static JsonNode *member(JsonObject *o, const char *name)
{
	return o != NULL ? json_object_get_member(o, name) : NULL;
}

const char *imap_bs_str(JsonObject *o, const char *name)
{
	JsonNode *n = member(o, name);
	if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
		return NULL;
	return json_node_get_string(n);
}

int64_t imap_bs_int(JsonObject *o, const char *name)
{
	JsonNode *n = member(o, name);
	if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
		return -1;
	gint64 v = json_node_get_int(n);
	return v >= 0 ? v : -1;
}

JsonArray *imap_bs_array(JsonObject *o, const char *name)
{
	JsonNode *n = member(o, name);
	return n != NULL && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
}

JsonObject *imap_bs_object(JsonObject *o, const char *name)
{
	JsonNode *n = member(o, name);
	return n != NULL && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

/* The k-th (from 1) child node of a multipart, or NULL. */
static JsonObject *child(JsonObject *node, unsigned k)
{
	JsonArray *parts = imap_bs_array(node, "parts");
	if (parts == NULL || k == 0 || k > json_array_get_length(parts))
		return NULL;
	JsonNode *n = json_array_get_element(parts, k - 1);
	return JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

JsonObject *imap_bs_find(const struct imap_bs *bs, const unsigned *path, size_t n_path)
{
	JsonObject *cur = bs->root;
	for (size_t i = 0; i < n_path && cur != NULL; i++) {
		JsonObject *container = cur;
		/* Below a message/rfc822 part its embedded message is numbered. */
		if (i > 0 && imap_bs_object(container, "message") != NULL)
			container = imap_bs_object(container, "message");
		if (imap_bs_array(container, "parts") != NULL)
			cur = child(container, path[i]);
		else
			cur = path[i] == 1 ? container : NULL;
	}
	return cur;
}

bool imap_bs_range(JsonObject *node, bool header, uint64_t *off_r, uint64_t *len_r)
{
	int64_t off = imap_bs_int(node, header ? "header_offset" : "body_offset");
	int64_t len = imap_bs_int(node, header ? "header_length" : "body_length");
	if (off < 0 || len < 0)
		return false;
	*off_r = (uint64_t)off;
	*len_r = (uint64_t)len;
	return true;
}
