"""The other side of hookscope's Standard Webhooks signatures, done by real libraries:
Svix's own (`svix.webhooks.Webhook`) for v1 (HMAC) and `cryptography` for v1a (ed25519);
and a HAR reader's view of hookscope's export (`haralyzer`).

    standard_webhooks.py keypair                      -> {"secret": "whsk_...", "public": "whpk_..."}
    standard_webhooks.py sign-svix SECRET ID TS FILE  -> the svix-* headers, as JSON
    standard_webhooks.py sign-v1a SECRET ID TS FILE   -> the webhook-* headers, as JSON
    standard_webhooks.py har-headers FILE             -> each entry's request and response
        header lines as haralyzer reads them, as JSON
    standard_webhooks.py junit FILE                   -> what junitparser reads of a JUnit
        XML file: the suite's counts and each case's name and result, as JSON
    standard_webhooks.py receive svix|v1a KEY         -> serves one POST on a free loopback
        port (printed first), verifies it, answers 204 or 401, prints the verdict
"""

import base64
import datetime
import http.server
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from svix.webhooks import Webhook, WebhookVerificationError


def keypair():
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    print(json.dumps({
        "secret": "whsk_" + base64.b64encode(seed).decode(),
        "public": "whpk_" + base64.b64encode(public).decode(),
    }))


def sign_svix(secret, msg_id, timestamp, path):
    body = open(path, "rb").read().decode()
    at = datetime.datetime.fromtimestamp(int(timestamp), tz=datetime.timezone.utc)
    signature = Webhook(secret).sign(msg_id, at, body)
    print(json.dumps({"svix-id": msg_id, "svix-timestamp": timestamp, "svix-signature": signature}))


def sign_v1a(secret, msg_id, timestamp, path):
    seed = base64.b64decode(secret.removeprefix("whsk_"))
    private = Ed25519PrivateKey.from_private_bytes(seed)
    content = f"{msg_id}.{timestamp}.".encode() + open(path, "rb").read()
    signature = base64.b64encode(private.sign(content)).decode()
    print(json.dumps({
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1a," + signature,
    }))


def verify_v1a(public_key, headers, body):
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key.removeprefix("whpk_")))
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    for item in headers["webhook-signature"].split():
        version, _, signature = item.partition(",")
        if version == "v1a":
            public.verify(base64.b64decode(signature), content)
            return
    raise ValueError("no v1a signature")


def har_headers(path):
    from haralyzer import HarEntry, HarParser

    parser = HarParser(json.load(open(path)))
    entries = [HarEntry(entry) for entry in parser.har_data["entries"]]
    print(json.dumps([
        {
            "request": [[h["name"], h["value"]] for h in entry.request.headers],
            "response": [[h["name"], h["value"]] for h in entry.response.headers],
            "status": entry.response.status,
        }
        for entry in entries
    ]))


def junit(path):
    from junitparser import Error, Failure, JUnitXml, Skipped

    cases = []
    totals = {"tests": 0, "failures": 0, "skipped": 0, "errors": 0}
    for suite in JUnitXml.fromfile(path):
        for name in totals:
            totals[name] += getattr(suite, name) or 0
        for case in suite:
            kinds = {type(result) for result in case.result}
            result = "failure" if Failure in kinds or Error in kinds else "skipped" if Skipped in kinds else "passed"
            cases.append([case.name, result, case.classname])
    print(json.dumps({**totals, "cases": cases}))


def receive(mode, key):
    verdicts = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                if mode == "svix":
                    Webhook(key).verify(body, headers)
                else:
                    verify_v1a(key, headers, body)
                names = sorted(h for h in headers if h.split("-")[0] in ("svix", "webhook"))
                verdicts.append("verified " + ",".join(names))
                self.send_response(204)
            except (WebhookVerificationError, InvalidSignature, ValueError, KeyError) as error:
                verdicts.append(f"refused {type(error).__name__}: {error}")
                self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.handle_request()
    print(verdicts[0] if verdicts else "nothing received", flush=True)


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    {
        "keypair": keypair,
        "sign-svix": sign_svix,
        "sign-v1a": sign_v1a,
        "har-headers": har_headers,
        "junit": junit,
        "receive": receive,
    }[command](*arguments)
