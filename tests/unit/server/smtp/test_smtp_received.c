#include <criterion/criterion.h>
#include <string.h>

#include "common/buf.h"
#include "server/smtp/smtp_received.h"

Test(smtp_received, submission_full)
{
	struct buf b;
	buf_init(&b, 4096);
	struct smtp_received_info ri = {
	    .helo = "client.example",
	    .peer_ip = "192.0.2.7",
	    .hostname = "mail.corp.example",
	    .tls_version = "TLSv1.3",
	    .tls_cipher = "TLS_AES_256_GCM_SHA384",
	    .auth_user = "alice@corp.example",
	    .auth_mech = "SCRAM-SHA-256",
	    .id = "3fa2c1d0.1",
	    .rcpt = "bob@corp.example",
	    .time = 1733220000,
	};
	cr_assert_eq(smtp_received_format(&ri, &b), 0);
	cr_assert_str_eq(b.data, "Received: from client.example ([192.0.2.7])\r\n"
	                         "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n"
	                         "\t(authenticated user alice@corp.example by SCRAM-SHA-256)\r\n"
	                         "\tby mail.corp.example (sealmail) with ESMTPSA id 3fa2c1d0.1\r\n"
	                         "\tfor <bob@corp.example>; Tue, 03 Dec 2024 10:00:00 +0000\r\n");
	buf_free(&b);
}

Test(smtp_received, peer_and_hostile_text)
{
	struct buf b;
	buf_init(&b, 4096);
	struct smtp_received_info ri = {
	    .helo = "evil\r\nX-Injected: 1 (",
	    .peer_ip = "::1",
	    .hostname = "mx.corp.example",
	    .tls_version = "TLSv1.2",
	    .tls_cipher = "ECDHE",
	    .peer_subject = "CN=mx2 (\"x\")\r\nBcc: y",
	    .id = "1",
	    .smtputf8 = true,
	    .time = 0,
	};
	cr_assert_eq(smtp_received_format(&ri, &b), 0);
	cr_assert_str_eq(b.data, "Received: from evil??X-Injected:?1?? ([::1])\r\n"
	                         "\t(using TLSv1.2 with cipher ECDHE)\r\n"
	                         "\t(client certificate \"CN=mx2 ??x????Bcc: y\")\r\n"
	                         "\tby mx.corp.example (sealmail) with UTF8SMTPS id 1\r\n"
	                         "\t; Thu, 01 Jan 1970 00:00:00 +0000\r\n");
	/* Every line is short and ends in CRLF; no bare CR or LF. */
	for (size_t i = 0; i < b.len; i++) {
		if (b.data[i] == '\r')
			cr_assert_eq(b.data[i + 1], '\n');
		if (b.data[i] == '\n')
			cr_assert_eq(b.data[i - 1], '\r');
	}
	buf_free(&b);
}

Test(smtp_received, helo_missing_and_long)
{
	struct buf b;
	buf_init(&b, 4096);
	char longhelo[1000];
	memset(longhelo, 'a', sizeof(longhelo) - 1);
	longhelo[999] = '\0';
	struct smtp_received_info ri = {
	    .helo = longhelo, .peer_ip = "1.2.3.4", .hostname = "h", .id = "x", .time = 0};
	cr_assert_eq(smtp_received_format(&ri, &b), 0);
	cr_assert(strstr(b.data, "\r\n") - b.data < 200);
	cr_assert(strstr(b.data, "with ESMTP id x") != NULL);
	buf_reset(&b);
	ri.helo = NULL;
	cr_assert_eq(smtp_received_format(&ri, &b), 0);
	cr_assert(strncmp(b.data, "Received: from unknown ([1.2.3.4])\r\n", 36) == 0);
	buf_free(&b);
}

Test(smtp_received, date)
{
	char d[40];
	smtp_format_date(951782400, d, sizeof(d)); /* leap day 2000 */
	cr_assert_str_eq(d, "Tue, 29 Feb 2000 00:00:00 +0000");
	smtp_format_date(1733220000, d, 10);
	cr_assert_str_eq(d, "Tue, 03 D");
}

Test(smtp_received, certificate_login_names_serial_and_subject)
{
	struct buf b;
	buf_init(&b, 4096);
	struct smtp_received_info ri = {
	    .helo = "laptop",
	    .peer_ip = "192.0.2.8",
	    .hostname = "mail.corp.example",
	    .tls_version = "TLSv1.3",
	    .tls_cipher = "TLS_AES_128_GCM_SHA256",
	    .auth_user = "alice@corp.example",
	    .auth_mech = "client certificate",
	    .peer_subject = "CN=alice@corp.example",
	    .peer_serial = "5d0c1e",
	    .id = "7.1",
	    .time = 0,
	};
	cr_assert_eq(smtp_received_format(&ri, &b), 0);
	cr_assert_str_eq(b.data,
	                 "Received: from laptop ([192.0.2.8])\r\n"
	                 "\t(using TLSv1.3 with cipher TLS_AES_128_GCM_SHA256)\r\n"
	                 "\t(authenticated user alice@corp.example by client certificate)\r\n"
	                 "\t(client certificate \"CN=alice@corp.example\" serial 5d0c1e)\r\n"
	                 "\tby mail.corp.example (sealmail) with ESMTPSA id 7.1\r\n"
	                 "\t; Thu, 01 Jan 1970 00:00:00 +0000\r\n");
	buf_free(&b);
}

Test(smtp_received, organisation_server_is_named)
{
	struct buf b;
	buf_init(&b, 4096);
	struct smtp_received_info ri = {
	    .helo = "mx2.corp.example",
	    .peer_ip = "192.0.2.9",
	    .hostname = "mail.corp.example",
	    .tls_version = "TLSv1.3",
	    .tls_cipher = "X",
	    .peer_name = "mx2.corp.example) (x",
	    .peer_subject = "CN=mx2.corp.example",
	    .peer_serial = "01ab",
	    .id = "9.2",
	    .time = 0,
	};
	cr_assert_eq(smtp_received_format(&ri, &b), 0);
	cr_assert_str_eq(b.data, "Received: from mx2.corp.example ([192.0.2.9])\r\n"
	                         "\t(using TLSv1.3 with cipher X)\r\n"
	                         "\t(organisation server mx2.corp.example???x)\r\n"
	                         "\t(client certificate \"CN=mx2.corp.example\" serial 01ab)\r\n"
	                         "\tby mail.corp.example (sealmail) with ESMTPS id 9.2\r\n"
	                         "\t; Thu, 01 Jan 1970 00:00:00 +0000\r\n");
	buf_free(&b);
}

Test(smtp_received, return_path)
{
	struct buf b;
	buf_init(&b, 4096);
	cr_assert_eq(smtp_return_path_format("alice@corp.example", &b), 0);
	cr_assert_eq(smtp_return_path_format("", &b), 0);
	cr_assert_eq(smtp_return_path_format("a>\r\nX: y", &b), 0);
	cr_assert_str_eq(b.data, "Return-Path: <alice@corp.example>\r\n"
	                         "Return-Path: <>\r\n"
	                         "Return-Path: <a???X: y>\r\n");
	buf_free(&b);
}
