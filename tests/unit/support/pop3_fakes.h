#ifndef SEALMAIL_TEST_POP3_FAKES_H
#define SEALMAIL_TEST_POP3_FAKES_H
/*
 * Fakes for the POP3 session tests (pop3_fakes.c): a poster the test pumps and an
 * auth_login that checks passwords with the real store found in conn_services(c).
 */
#include <stdbool.h>

#include "storage/store.h"

/* Give this to store_open: completions wait until the test runs them. */
extern const struct store_poster pop3_fake_poster;
/* Runs one posted completion, waiting up to timeout_ms for it. False on timeout. */
bool pop3_fake_run_one(unsigned timeout_ms);
/* Runs completions until done(arg) is true. False when none came for 10 s. */
bool pop3_fake_run_until(bool (*done)(void *arg), void *arg);
/* Forgets completions still queued (after store_close, at the end of a test). */
void pop3_fake_drop_posted(void);
/* How many times auth_login was called. */
extern unsigned pop3_fake_logins;

#endif
