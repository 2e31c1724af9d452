/*
 * What a STARTTLS gateway says before TLS (server/gateway/gateway_dance.c), and how it
 * recognises the backend's greeting.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "server/gateway/gateway_dance.h"

static char reply[4096];

static enum gateway_dance_step say(enum cfg_speaks sp, const char *line)
{
	struct buf b;
	buf_init(&b, 4096);
	enum gateway_dance_step r = gateway_dance_line(sp, "gw.example", line, strlen(line), &b);
	snprintf(reply, sizeof(reply), "%.*s", (int)b.len, b.len ? b.data : "");
	buf_free(&b);
	return r;
}

Test(gateway_dance, smtp)
{
	cr_assert_eq(say(CFG_SPEAKS_SMTP, "EHLO client.example"), GW_DANCE_REPLY);
	cr_assert_str_eq(reply, "250-gw.example\r\n250 STARTTLS\r\n");
	cr_assert_eq(say(CFG_SPEAKS_SMTP, "ehlo"), GW_DANCE_ERROR);
	cr_assert_eq(say(CFG_SPEAKS_SMTP, "AUTH PLAIN xyz"), GW_DANCE_ERROR);
	cr_assert(strncmp(reply, "530 5.7.0", 9) == 0);
	cr_assert_eq(say(CFG_SPEAKS_SMTP, "MAIL FROM:<a@b>"), GW_DANCE_ERROR);
	cr_assert_eq(say(CFG_SPEAKS_SMTP, "STARTTLS now"), GW_DANCE_ERROR);
	cr_assert(strncmp(reply, "501", 3) == 0);
	cr_assert_eq(say(CFG_SPEAKS_SMTP, "NOOP"), GW_DANCE_REPLY);
	cr_assert_eq(say(CFG_SPEAKS_SMTP, "starttls"), GW_DANCE_STARTTLS);
	cr_assert_str_eq(reply, "220 2.0.0 Ready to start TLS\r\n");
	cr_assert_eq(say(CFG_SPEAKS_SMTP, "QUIT"), GW_DANCE_QUIT);
	cr_assert(strncmp(reply, "221 ", 4) == 0);
	struct buf b;
	buf_init(&b, 4096);
	cr_assert_eq(gateway_dance_line(CFG_SPEAKS_SMTP, "h", "STARTTLS\0x", 10, &b),
	             GW_DANCE_ERROR);
	buf_free(&b);
}

Test(gateway_dance, imap)
{
	cr_assert_eq(say(CFG_SPEAKS_IMAP, "a CAPABILITY"), GW_DANCE_REPLY);
	cr_assert_str_eq(reply, "* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n"
	                        "a OK CAPABILITY completed\r\n");
	cr_assert_eq(say(CFG_SPEAKS_IMAP, "b LOGIN alice secret"), GW_DANCE_ERROR);
	cr_assert_str_eq(reply, "b NO [PRIVACYREQUIRED] Use STARTTLS first\r\n");
	cr_assert_eq(say(CFG_SPEAKS_IMAP, "c AUTHENTICATE PLAIN"), GW_DANCE_ERROR);
	cr_assert_eq(say(CFG_SPEAKS_IMAP, "d SELECT INBOX"), GW_DANCE_ERROR);
	cr_assert(strncmp(reply, "d BAD", 5) == 0);
	cr_assert_eq(say(CFG_SPEAKS_IMAP, "STARTTLS"), GW_DANCE_ERROR); /* no tag */
	cr_assert(strncmp(reply, "* BAD", 5) == 0);
	cr_assert_eq(say(CFG_SPEAKS_IMAP, "+x STARTTLS"), GW_DANCE_ERROR);
	cr_assert_eq(say(CFG_SPEAKS_IMAP, "e starttls"), GW_DANCE_STARTTLS);
	cr_assert_str_eq(reply, "e OK Begin TLS negotiation now\r\n");
	cr_assert_eq(say(CFG_SPEAKS_IMAP, "f LOGOUT"), GW_DANCE_QUIT);
	cr_assert_str_eq(reply, "* BYE Logging out\r\nf OK LOGOUT completed\r\n");
	/* A tag over 64 characters is not one. */
	char line[200];
	memset(line, 'a', 100);
	memcpy(line + 100, " NOOP", 6);
	cr_assert_eq(say(CFG_SPEAKS_IMAP, line), GW_DANCE_ERROR);
	cr_assert(strncmp(reply, "* BAD", 5) == 0);
}

Test(gateway_dance, pop3)
{
	cr_assert_eq(say(CFG_SPEAKS_POP3, "CAPA"), GW_DANCE_REPLY);
	cr_assert_str_eq(reply, "+OK Capability list follows\r\nSTLS\r\n.\r\n");
	cr_assert_eq(say(CFG_SPEAKS_POP3, "USER alice"), GW_DANCE_ERROR);
	cr_assert_eq(say(CFG_SPEAKS_POP3, "APOP a b"), GW_DANCE_ERROR);
	cr_assert_eq(say(CFG_SPEAKS_POP3, "stls"), GW_DANCE_STARTTLS);
	cr_assert_eq(say(CFG_SPEAKS_POP3, "QUIT"), GW_DANCE_QUIT);
}

static ssize_t greet(enum cfg_speaks sp, const char *s)
{
	return gateway_backend_greeting(sp, s, strlen(s));
}

Test(gateway_dance, backend_greeting)
{
	cr_assert_eq(greet(CFG_SPEAKS_SMTP, "220 ready\r\nEXTRA"), 11);
	cr_assert_eq(greet(CFG_SPEAKS_SMTP, "220-a\r\n220-b\r\n220 c\r\n"), 21);
	cr_assert_eq(greet(CFG_SPEAKS_SMTP, "220-a\r\n220-b"), 0);
	cr_assert_eq(greet(CFG_SPEAKS_SMTP, "220"), 0);
	cr_assert_eq(greet(CFG_SPEAKS_SMTP, "554 go away\r\n"), -EPROTO);
	cr_assert_eq(greet(CFG_SPEAKS_SMTP, "2200 x\r\n"), -EPROTO);
	cr_assert_eq(greet(CFG_SPEAKS_IMAP, "* OK hi\r\n"), 9);
	cr_assert_eq(greet(CFG_SPEAKS_IMAP, "* PREAUTH hi\r\n"), 14);
	cr_assert_eq(greet(CFG_SPEAKS_IMAP, "* BYE no\r\n"), -EPROTO);
	cr_assert_eq(greet(CFG_SPEAKS_POP3, "+OK hi\r\n"), 8);
	cr_assert_eq(greet(CFG_SPEAKS_POP3, "-ERR no\r\n"), -EPROTO);
	static char big[GW_GREETING_MAX + 10];
	memset(big, 'x', sizeof(big) - 1);
	memcpy(big, "220-", 4);
	cr_assert_eq(greet(CFG_SPEAKS_SMTP, big), -E2BIG);
}
