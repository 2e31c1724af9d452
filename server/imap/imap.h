#ifndef SEALMAIL_IMAP_H
#define SEALMAIL_IMAP_H
/* The IMAP listener's protocol handler (the engine is imap_client.c). */
#include "server/conn.h"

extern const struct proto_handler imap_proto_handler;

#endif
