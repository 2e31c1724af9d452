// Sends one message with nodemailer; the job comes as JSON in argv[2]:
// {host, port, secure, starttls, user, pass, ca, cert, key, from, to: [...], raw | {subject, text}}
// (cert and key: a client certificate to present, optional)
// Prints {"ok": true, "response": "..."} or {"ok": false, "error": "..."} on stdout.
'use strict';
const fs = require('fs');
const nodemailer = require('nodemailer');

const job = JSON.parse(process.argv[2]);
const transport = nodemailer.createTransport({
  host: job.host,
  port: job.port,
  secure: !!job.secure,
  requireTLS: !!job.starttls,
  auth: job.user ? { user: job.user, pass: job.pass, method: job.method || undefined } : undefined,
  tls: {
    ca: [fs.readFileSync(job.ca)],
    servername: job.servername || undefined,
    cert: job.cert ? fs.readFileSync(job.cert) : undefined,
    key: job.key ? fs.readFileSync(job.key) : undefined,
  },
  name: 'node-client.example',
});

const message = { envelope: { from: job.from, to: job.to } };
if (job.raw !== undefined) {
  message.raw = Buffer.from(job.raw, 'base64');
} else {
  Object.assign(message, { from: job.from, to: job.to, subject: job.subject, text: job.text });
}
transport.sendMail(message).then(
  (info) => { console.log(JSON.stringify({ ok: true, response: info.response })); },
  (err) => { console.log(JSON.stringify({ ok: false, error: String(err && err.message), code: err && err.responseCode })); },
);
