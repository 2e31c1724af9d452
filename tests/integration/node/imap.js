// imapflow against sealmaild: login, list, mailboxOpen, append, fetch, flags, move, idle.
// Driven by tests/integration/test_imap_imapflow.py; prints one JSON object, exits 1 on error.
// Env: IMAP_PORT, IMAP_CA (PEM file), IMAP_USER, IMAP_PASS.
'use strict';
const fs = require('fs');
const { ImapFlow } = require('imapflow');

function client() {
    return new ImapFlow({
        host: '127.0.0.1',
        port: Number(process.env.IMAP_PORT),
        secure: true,
        tls: { ca: [fs.readFileSync(process.env.IMAP_CA)], servername: '127.0.0.1' },
        auth: { user: process.env.IMAP_USER, pass: process.env.IMAP_PASS },
        logger: false,
        qresync: true,
    });
}

const message = Buffer.from(
    'From: Node <node@example.org>\r\nTo: ' + process.env.IMAP_USER + '\r\n' +
    'Subject: from imapflow\r\nDate: Wed, 04 Dec 2024 12:00:00 +0000\r\n' +
    'Message-ID: <imapflow-1@example.org>\r\n\r\nhello from node\r\n');

async function main() {
    const out = {};
    const c = client();
    await c.connect();
    out.capabilities = [...c.capabilities.keys()];
    const list = await c.list();
    out.list = list.map((m) => ({ path: m.path, specialUse: m.specialUse || null }));
    await c.mailboxCreate('FlowDest');
    const appended = await c.append('INBOX', message, ['\\Seen', '$Node'], new Date('2021-03-04T05:06:07Z'));
    out.append = { uid: appended.uid, uidValidity: String(appended.uidValidity) };
    const box = await c.mailboxOpen('INBOX');
    out.open = { exists: box.exists, uidNext: box.uidNext, highestModseq: String(box.highestModseq) };

    const fetched = [];
    for await (const msg of c.fetch('1:*', { uid: true, flags: true, envelope: true,
        bodyStructure: true, source: true, internalDate: true, size: true })) {
        fetched.push({ uid: msg.uid, flags: [...msg.flags], subject: msg.envelope.subject,
            from: msg.envelope.from[0].address, size: msg.size,
            sourceEqual: msg.source.equals(message), type: msg.bodyStructure.type,
            internalDate: msg.internalDate.toISOString() });
    }
    out.fetch = fetched;
    const one = await c.fetchOne(String(appended.uid), { bodyParts: ['1'] }, { uid: true });
    out.part1 = one.bodyParts.get('1').toString();

    await c.messageFlagsAdd({ uid: String(appended.uid) }, ['\\Flagged'], { uid: true });
    await c.messageFlagsRemove({ uid: String(appended.uid) }, ['$Node'], { uid: true });
    const f = await c.fetchOne(String(appended.uid), { flags: true }, { uid: true });
    out.flags = [...f.flags].sort();
    out.search = await c.search({ subject: 'imapflow' }, { uid: true });
    out.searchBody = await c.search({ body: 'node' }, { uid: true });

    // IDLE: a second client appends; the first must see EXISTS while idling.
    const before = c.mailbox.exists;
    const seen = new Promise((resolve) => {
        c.on('exists', (ev) => resolve(ev.count));
    });
    const idling = c.idle();
    await new Promise((r) => setTimeout(r, 300));
    const other = client();
    await other.connect();
    await other.append('INBOX', message);
    await other.logout();
    const timeout = new Promise((_, rej) => setTimeout(() => rej(new Error('no EXISTS while idle')), 5000));
    out.idleExists = await Promise.race([seen, timeout]);
    out.idleBefore = before;

    const moved = await c.messageMove(String(appended.uid), 'FlowDest', { uid: true });
    out.move = { destination: moved.destination, uidMap: moved.uidMap ? [...moved.uidMap.entries()] : null };
    const st = await c.status('FlowDest', { messages: true, uidNext: true });
    out.status = { messages: st.messages, uidNext: st.uidNext };
    await c.logout();
    void idling;
    process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => {
    process.stderr.write((err && err.stack) || String(err));
    process.stderr.write('\n' + JSON.stringify(err && err.response || null) + '\n');
    process.exit(1);
});
