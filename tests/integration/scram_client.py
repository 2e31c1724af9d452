"""The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) for the integration tests, shared by
SMTP, IMAP and POP3 (none of smtplib, imaplib or poplib has SCRAM): PBKDF2-HMAC-SHA-256, HMAC
and SHA-256 from hashlib. The client checks the server's signature too.

Python's ssl module cannot export tls-exporter keying material, so a test can ask for
SCRAM-SHA-256-PLUS only with a binding that does not match its TLS session."""
import base64
import hashlib
import hmac
import os


def b64(b):
    return base64.b64encode(b).decode()


def saslname(user):
    return user.replace("=", "=3D").replace(",", "=2C")


def attrs(msg_b64):
    """The attributes of a base64 server message, as a dict."""
    text = base64.b64decode(msg_b64).decode()
    return dict(kv.split("=", 1) for kv in text.split(","))


class Scram:
    """The client of one exchange. cbind is the GS2 header: b"n,," (no binding), b"y,,"
    (could bind, but the server seems not to), b"p=tls-exporter,," (SCRAM-SHA-256-PLUS)."""

    def __init__(self, user, password, cbind=b"n,,"):
        self.user, self.password = user, password
        self.gs2 = cbind
        self.nonce = b64(os.urandom(18))
        self.first_bare = "n=%s,r=%s" % (saslname(user), self.nonce)
        self.server_sig = None

    def first(self):
        """The client-first-message, base64."""
        return b64(self.gs2 + self.first_bare.encode())

    def final(self, server_first_b64, cb_data=b"", tamper=None, nonce=None):
        """The client-final-message, base64. tamper flips a bit of the proof; nonce replaces
        the combined nonce the server sent."""
        sf = base64.b64decode(server_first_b64).decode()
        a = attrs(server_first_b64)
        assert a["r"].startswith(self.nonce), sf
        self.salt, self.iterations = a["s"], int(a["i"])
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(),
                                     base64.b64decode(a["s"]), self.iterations)
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = "c=%s,r=%s" % (b64(self.gs2 + cb_data), nonce or a["r"])
        auth_msg = ",".join([self.first_bare, sf, without_proof]).encode()
        sig = hmac.new(stored_key, auth_msg, "sha256").digest()
        proof = bytes(x ^ y for x, y in zip(client_key, sig))
        if tamper:
            proof = bytes([proof[0] ^ 1]) + proof[1:]
        server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        self.server_sig = hmac.new(server_key, auth_msg, "sha256").digest()
        return b64((without_proof + ",p=" + b64(proof)).encode())

    def check_server_final(self, server_final_b64):
        sf = base64.b64decode(server_final_b64).decode()
        assert sf == "v=" + b64(self.server_sig), sf

    def mech(self):
        """A callable for imaplib's authenticate(): challenge bytes in, response bytes out
        (imaplib does the base64). The third challenge is the server-final-message: checked,
        and answered with an empty response."""
        state = {"step": 0}

        def step(challenge):
            state["step"] += 1
            if state["step"] == 1:
                assert challenge == b"", challenge
                return base64.b64decode(self.first())
            if state["step"] == 2:
                return base64.b64decode(self.final(b64(challenge)))
            self.check_server_final(b64(challenge))
            return b""
        return step
