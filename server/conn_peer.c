/*
 * The peer classification rule (conn_peer.h). A certificate with an e-mail identity is a
 * person's, whatever else it says: it never counts as a server, so a user certificate can
 * never open the organisation's server-to-server path.
 */
#include "server/conn_peer.h"

#include <string.h>

enum conn_peer_kind conn_peer_decide(const struct conn_peer_facts *f, const struct config *cfg,
                                     const struct cfg_listener *l, const char **name_r)
{
	*name_r = NULL;
	if (!f->verified)
		return CONN_PEER_NONE;
	if (f->user_identity)
		return CONN_PEER_USER;
	if (l->protocol != CFG_PROTO_SMTP || cfg_listener_without_peers(cfg, l))
		return CONN_PEER_OTHER;
	if (cfg->tls.peer_ca != NULL && !f->from_peer_ca)
		return CONN_PEER_OTHER;
	if (l->n_peers == 0) {
		if (f->n_names == 0)
			return CONN_PEER_OTHER;
		*name_r = f->names[0];
		return CONN_PEER_SERVER;
	}
	/* Both lists are lower-cased when they are made. */
	for (size_t i = 0; i < f->n_names; i++) {
		for (size_t k = 0; k < l->n_peers; k++) {
			if (strcmp(f->names[i], l->peers[k]) == 0) {
				*name_r = f->names[i];
				return CONN_PEER_SERVER;
			}
		}
	}
	return CONN_PEER_OTHER;
}
