"""Writes the benchmark's realistic Panther alerts: about 1 KB and about 64 KB."""
import json
import sys
from pathlib import Path

BASE = {
    "id": "AWS.CloudTrail.ConsoleLoginWithoutMFA",
    "createdAt": "2026-11-22T10:20:30.123Z",
    "severity": "HIGH",
    "type": "RULE",
    "link": "https://acme.runpanther.net/alerts/b90c19e66e160e194a5b3b94ec27fb7c",
    "title": "New Alert: Console login without MFA from [203.0.113.42]",
    "name": "Console Login Without MFA",
    "alertId": "b90c19e66e160e194a5b3b94ec27fb7c",
    "description": "A user logged into the AWS console without multi-factor authentication.",
    "runbook": "Confirm the login with the user; enforce MFA on the account.",
    "tags": ["AWS", "Identity & Access Management", "Initial Access"],
    "version": "CJm9PiaXV0q8U7Qhg3HcSw9xo0ZWZwMm",
}


def event(n):
    return {
        "eventName": "ConsoleLogin",
        "eventTime": f"2026-11-22T10:{n % 60:02d}:{(n * 7) % 60:02d}Z",
        "sourceIPAddress": f"203.0.113.{n % 250}",
        "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15",
        "userIdentity": {"type": "IAMUser", "userName": f"user-{n}", "accountId": "123456789012"},
        "responseElements": {"ConsoleLogin": "Success"},
        "additionalEventData": {"MFAUsed": "No", "MobileVersion": "No"},
    }


def alert(target_size):
    payload = dict(BASE)
    events = []
    payload["alertContext"] = {"events": events, "ip": "203.0.113.42"}
    n = 0
    while len(json.dumps(payload)) < target_size * 0.95:
        events.append(event(n))
        n += 1
    return json.dumps(payload)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, size in [("alert-1k.json", 1024), ("alert-64k.json", 64 * 1024)]:
        text = alert(size)
        (out / name).write_text(text)
        print(f"{name}: {len(text)} bytes")
