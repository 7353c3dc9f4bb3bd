"""A real SMTP server on loopback for the email sink tests (aiosmtpd).

Every accepted message is written to DIR as NNNN.eml (the raw bytes) and
NNNN.json (parsed by Python's own email package: subject, header names,
part types, the text/plain and text/html parts, the envelope, whether the
session was authenticated and encrypted). Authentication attempts are
appended to DIR/auth.log ("ok LOGIN" / "fail LOGIN").

Prints "READY <port>" once it accepts connections; stops when its stdin
closes (the test that started it is gone) or on SIGTERM/SIGINT.

    python3 smtp_server.py --port 2525 --dir out [--auth user:pass]
        [--starttls CERT KEY | --tls CERT KEY] [--reject ADDR]...
"""

import argparse
import email
import email.policy
import json
import os
import signal
import ssl
import sys
import threading
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Recorder:
    def __init__(self, out, reject):
        self.out = out
        self.reject = set(a.lower() for a in reject)
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        text = html = None
        types = []
        for part in msg.walk():
            ctype = part.get_content_type()
            types.append(ctype)
            if ctype == "text/plain" and text is None:
                text = part.get_content()
            elif ctype == "text/html" and html is None:
                html = part.get_content()
        # session.ssl is set after STARTTLS; with implicit TLS only the
        # transport knows.
        ssl_object = server.transport.get_extra_info("ssl_object")
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "subject": str(msg.get("subject", "")),
            "from": str(msg.get("from", "")),
            "to": str(msg.get("to", "")),
            "message_id": str(msg.get("message-id", "")),
            "alert_id": str(msg.get("x-wirewatch-alert-id", "")),
            "header_names": list(msg.keys()),
            "content_type": msg.get_content_type(),
            "part_types": types,
            "text": text,
            "html": html,
            "authenticated": bool(session.authenticated),
            "encrypted": session.ssl is not None or ssl_object is not None,
        }
        with self.lock:
            self.count += 1
            name = "%04d" % self.count
        with open(os.path.join(self.out, name + ".eml"), "wb") as f:
            f.write(raw)
        tmp = os.path.join(self.out, name + ".json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.out, name + ".json"))
        return "250 2.0.0 Message accepted for delivery"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--auth")
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--reject", action="append", default=[])
    a = p.parse_args()
    os.makedirs(a.dir, exist_ok=True)

    kwargs = {}
    if a.auth:
        user, password = a.auth.split(":", 1)
        log = os.path.join(a.dir, "auth.log")

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login == user.encode()
                and auth_data.password == password.encode()
            )
            login = getattr(auth_data, "login", b"?").decode("utf-8", "replace")
            with open(log, "a", encoding="utf-8") as f:
                f.write("%s %s\n" % ("ok" if ok else "fail", login))
            return AuthResult(success=ok, handled=False)

        # AUTH without TLS is what the `tls = "none"` tests need, on loopback.
        warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
        kwargs.update(
            authenticator=authenticator, auth_required=True, auth_require_tls=False
        )
    if a.starttls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*a.starttls)
        kwargs.update(tls_context=ctx, require_starttls=True)
    if a.tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*a.tls)
        kwargs.update(ssl_context=ctx)

    controller = Controller(
        Recorder(a.dir, a.reject), hostname="127.0.0.1", port=a.port, **kwargs
    )
    controller.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def watch_stdin():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    print("READY %d" % a.port, flush=True)
    while not stop.wait(0.5):
        pass
    controller.stop()


if __name__ == "__main__":
    main()
