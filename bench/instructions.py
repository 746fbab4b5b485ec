"""Instructions per request, counted by callgrind: repeatable where seconds are not.

Each target runs under `valgrind --tool=callgrind` twice, answering N and then 2N
requests of the 1 KB alert sent one after the other on one kept-alive connection;
the difference divided by N is what one request costs, start-up and shutdown left
out. Beside each hookscope mode, its same-work ceiling's count divided by its own
(examples/baseline.rs --mode), which reads like the req/s ratio of bench/run.sh.

  python3 bench/instructions.py                      # N=2000
  N=500 COMPARE=before=/tmp/before/hookscope python3 bench/instructions.py
  FORWARD=1 N=1000 python3 bench/instructions.py     # forwarding: the proxies, to a native upstream

With FORWARD=1 the targets are proxies in front of the bare baseline (which runs natively,
its instructions not counted): `hyper-proxy` (examples/baseline.rs --proxy, the ceiling of
forwarding on this stack) and `hookscope listen --forward --format quiet`.

Needs valgrind and a release build (bench/run.sh builds one).
"""
import http.client
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N = int(os.environ.get("N", "2000"))
BODY = (ROOT / "target/bench/alert-1k.json").read_bytes()
BASELINE = str(ROOT / "target/release/examples/baseline")
HOOKSCOPE = os.environ.get("HOOKSCOPE", str(ROOT / "target/release/hookscope"))
COMPARE = dict(entry.split("=", 1) for entry in os.environ.get("COMPARE", "").split(",") if entry)
LISTEN = ["listen", "--port", "0", "--no-admin"]


FORWARD = os.environ.get("FORWARD") == "1"
ONLY = [name for name in os.environ.get("ONLY", "").split(",") if name]


def forward_targets(upstream):
    found = {"hyper-proxy": [BASELINE, "0", "--proxy", upstream]}
    for label, binary in {"hookscope": HOOKSCOPE, **COMPARE}.items():
        found[f"{label}-forward"] = [binary, *LISTEN, "--forward", upstream, "--format", "quiet"]
    return found


def targets(workdir):
    found = {
        "typed": [BASELINE, "0", "--mode", "typed"],
        "print": [BASELINE, "0", "--mode", "print"],
        "record": [BASELINE, "0", "--mode", "record", "--record", str(workdir / "ceiling.jsonl")],
    }
    for label, binary in {"hookscope": HOOKSCOPE, **COMPARE}.items():
        found[f"{label}-quiet"] = [binary, *LISTEN, "--format", "quiet"]
        found[f"{label}-json"] = [binary, *LISTEN, "--format", "json"]
        found[f"{label}-json-record"] = [binary, *LISTEN, "--format", "json", "--record",
                                         str(workdir / f"{label}.jsonl")]
    return found


def instructions(command, requests, workdir):
    out = workdir / "callgrind.out"
    process = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = None
    while url is None:
        line = process.stderr.readline()
        if not line:
            raise RuntimeError(f"{command[0]} exited before listening")
        if "listening on " in line:
            url = line.split("listening on ")[1].strip()
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port))
    for _ in range(requests):
        connection.request("POST", "/", BODY, {"Content-Type": "application/json"})
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 200, answer.status
    connection.close()
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=120)
    # Every thread writes its own part (`.out`, `.out-01`...): add them up.
    total = 0
    for part in workdir.glob("callgrind.out*"):
        found = re.search(r"^(?:summary|totals): (\d+)", part.read_text(), re.MULTILINE)
        total += int(found.group(1)) if found else 0
        part.unlink()
    return total


def native_upstream():
    process = subprocess.Popen([BASELINE, "0"], stderr=subprocess.PIPE, text=True)
    return process, process.stderr.readline().split("listening on ")[1].strip()


def main():
    upstream = None
    with tempfile.TemporaryDirectory(prefix="hookscope-instructions-") as workdir:
        workdir = Path(workdir)
        per_request = {}
        if FORWARD:
            upstream, upstream_url = native_upstream()
            chosen = forward_targets(upstream_url)
        else:
            chosen = targets(workdir)
        if ONLY:
            chosen = {name: command for name, command in chosen.items() if name in ONLY}
        for name, command in chosen.items():
            once = instructions(command, N, workdir)
            twice = instructions(command, 2 * N, workdir)
            per_request[name] = (twice - once) / N
            print(f"{name:24} {per_request[name]:9,.0f} instructions per request", file=sys.stderr)
    if upstream is not None:
        upstream.terminate()
        upstream.wait()
    ceiling_of = {"quiet": "typed", "json": "print", "json-record": "record",
                  "forward": "hyper-proxy"}
    # Ceiling ÷ target, so that it reads like the req/s ratio of bench/run.sh.
    print("| target | instructions per 1 KB request | same-work ceiling ÷ target |")
    print("|---|---|---|")
    for name, count in per_request.items():
        mode = next((m for m in ("json-record", "quiet", "json", "forward")
                     if name.endswith("-" + m)), None)
        ceiling = per_request.get(ceiling_of.get(mode))
        versus = f"{ceiling / count:.2f} ({ceiling_of[mode]})" if ceiling else ""
        print(f"| {name} | {count:,.0f} | {versus} |")


if __name__ == "__main__":
    main()
