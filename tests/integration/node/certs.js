// imapflow and nodemailer with a client certificate, against sealmaild listeners with
// `certificate_login: preauth` (neither client can send SASL EXTERNAL). Driven by
// tests/integration/test_certs_clients.py; the job is JSON in argv[2]:
// {imap_port, smtp_port, ca, cert, key, from, to}. Prints one JSON object.
'use strict';
const fs = require('fs');
const { ImapFlow } = require('imapflow');
const nodemailer = require('nodemailer');

const job = JSON.parse(process.argv[2]);
const tls = {
    ca: [fs.readFileSync(job.ca)],
    cert: fs.readFileSync(job.cert),
    key: fs.readFileSync(job.key),
    servername: '127.0.0.1',
};

async function imap() {
    const c = new ImapFlow({ host: '127.0.0.1', port: job.imap_port, secure: true, tls,
        logger: false });
    await c.connect();
    const out = { authenticated: c.authenticated || null, usable: c.usable };
    const box = await c.mailboxOpen('INBOX');
    out.exists = box.exists;
    const subjects = [];
    for await (const m of c.fetch('1:*', { envelope: true }))
        subjects.push(m.envelope.subject);
    out.subjects = subjects;
    await c.logout();
    return out;
}

async function smtp() {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: job.smtp_port, secure: true,
        tls, name: 'node-client.example' });
    const info = await t.sendMail({ from: job.from, to: job.to, subject: 'from nodemailer',
        text: 'sent with a client certificate' });
    return { response: info.response };
}

(async () => {
    const out = {};
    try {
        out.smtp = await smtp();
        out.imap = await imap();
        out.ok = true;
    } catch (e) {
        out.ok = false;
        out.error = String(e && e.message);
    }
    console.log(JSON.stringify(out));
})();
