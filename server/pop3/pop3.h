#ifndef SEALMAIL_POP3_H
#define SEALMAIL_POP3_H
#include "server/conn.h"
extern const struct proto_handler pop3_proto_handler;
#endif
