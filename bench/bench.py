"""hookscope's benchmark: each target against the bare hyper baseline, in the same run.

The record and stdout files go to BENCH_DIR, by default /dev/shm (memory): the table then
shows what hookscope costs, not how fast this machine's disk takes gigabytes. On a disk, a
sustained flood of 64 KB alerts is bound by the disk's write bandwidth once the kernel's
dirty-page limit is reached; BENCH_DIR=/tmp bench/run.sh measures that.

Called by bench/run.sh (which builds and installs what is needed). The server is pinned to
CPU 0 and wrk to CPU 1. Targets take turns (A B C D, A B C D, ...) for ROUNDS rounds so that
a noisy neighbour hurts them all alike; the table shows medians and ratios to the baseline.
"""
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "target" / "bench"
ROUNDS = int(os.environ.get("ROUNDS", "3"))
DURATION = os.environ.get("DURATION", "5s")
CONNECTIONS = [int(c) for c in os.environ.get("CONNECTIONS", "64,256").split(",")]
SIZES = {size: OUT / f"alert-{size}.json" for size in os.environ.get("SIZES", "1k,64k").split(",")}
MEMORY_REQUESTS = int(os.environ.get("MEMORY_REQUESTS", "1000000"))
HOOKSCOPE = os.environ.get("HOOKSCOPE", str(ROOT / "target" / "release" / "hookscope"))
# COMPARE=label=path[,label=path...]: other builds, measured in the same rounds.
COMPARE = dict(entry.split("=", 1) for entry in os.environ.get("COMPARE", "").split(",") if entry)
RECORDING = {"hookscope", *COMPARE}
BINARIES = {HOOKSCOPE, *COMPARE.values()}
ONLY = [name for name in os.environ.get("ONLY", "").split(",") if name]
CLK_TCK = os.sysconf("SC_CLK_TCK")


# The tools users would pick instead, installed by bench/run.sh and bench/forward.sh.
PEERS = ROOT / "target/bench/peers"


class Peer:
    """A server that does not print hookscope's `listening on` line: started on a port
    chosen here, ready once it accepts a connection."""

    def __init__(self, command, port):
        self.command = command
        self.port = port


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, process, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def wiremock(record_dir):
    """WireMock standalone (the jar the npm package `wiremock` ships) with one catch-all
    stub answering 200 `success`, as Panther's example does; no request journal, so
    that it keeps nothing per request (hookscope keeps its history)."""
    root = record_dir / "wiremock"
    (root / "mappings").mkdir(parents=True, exist_ok=True)
    (root / "mappings" / "catch-all.json").write_text(json.dumps(
        {"request": {"method": "ANY", "urlPattern": ".*"},
         "response": {"status": 200, "body": "success"}}))
    jar = next((PEERS / "node_modules/wiremock/build").glob("wiremock-standalone-*.jar"))
    port = free_port()
    return Peer(["java", "-jar", str(jar), "--port", str(port), "--bind-address", "127.0.0.1",
                 "--root-dir", str(root), "--disable-banner", "--no-request-journal",
                 "--disable-request-logging"], port)


def targets(record_dir):
    found = {
        "baseline": lambda r: [str(ROOT / "target/release/examples/baseline"), "0"],
        # The same-work ceilings: what hookscope's quiet, json and json+record modes do
        # at the least (issue 22); the table's ratios to them are hookscope's own cost.
        "typed": lambda r: [str(ROOT / "target/release/examples/baseline"), "0", "--mode", "typed"],
        "print": lambda r: [str(ROOT / "target/release/examples/baseline"), "0", "--mode", "print"],
        "record": lambda r: [str(ROOT / "target/release/examples/baseline"), "0", "--mode", "record",
                             "--record", str(record_dir / f"ceiling-{r}.jsonl")],
        "node-example": lambda r: ["node", str(ROOT / "bench/node-example.js"), "0"],
        "wiremock": lambda r: wiremock(record_dir),
        "hookscope": lambda r: [HOOKSCOPE, "listen", "--port", "0", "--admin", "127.0.0.1:0",
                                "--format", "json", "--record", str(record_dir / f"record-{r}.jsonl")],
        "hookscope-quiet": lambda r: [HOOKSCOPE, "listen", "--port", "0", "--admin", "127.0.0.1:0",
                                      "--format", "quiet"],
        "hookscope-json": lambda r: [HOOKSCOPE, "listen", "--port", "0", "--admin", "127.0.0.1:0",
                                     "--format", "json"],
        # --store instead of --record: every exchange committed to SQLite before its answer.
        "hookscope-store": lambda r: [HOOKSCOPE, "listen", "--port", "0", "--admin", "127.0.0.1:0",
                                      "--format", "json", "--store", str(record_dir / f"store-{r}.db")],
    }
    # The same two modes of other builds, in the same rounds, so that a change is
    # measured against the code before it.
    for label, binary in COMPARE.items():
        found[label] = lambda r, binary=binary: [
            binary, "listen", "--port", "0", "--admin", "127.0.0.1:0",
            "--format", "json", "--record", str(record_dir / f"record-{r}.jsonl")]
        found[f"{label}-quiet"] = lambda r, binary=binary: [
            binary, "listen", "--port", "0", "--admin", "127.0.0.1:0", "--format", "quiet"]
        found[f"{label}-store"] = lambda r, binary=binary, label=label: [
            binary, "listen", "--port", "0", "--admin", "127.0.0.1:0",
            "--format", "json", "--store", str(record_dir / f"store-{label}-{r}.db")]
    if ONLY:
        found = {name: command for name, command in found.items() if name in ONLY}
    return found


class Server:
    def __init__(self, command, stdout_path):
        # Appending, so that the file can be emptied between runs while the server writes.
        self.stdout = open(stdout_path, "ab")
        started = time.perf_counter()
        if isinstance(command, Peer):
            self.process = subprocess.Popen(["taskset", "-c", "0", *command.command],
                                            stdout=self.stdout, stderr=self.stdout)
            wait_listening(command.port, self.process)
            self.url, self.admin = f"http://127.0.0.1:{command.port}", None
            self.startup_ms = (time.perf_counter() - started) * 1000
            return
        self.process = subprocess.Popen(["taskset", "-c", "0", *command], stdout=self.stdout,
                                        stderr=subprocess.PIPE, text=True)
        self.url = self.admin = None
        while self.url is None or (command[0] in BINARIES and self.admin is None):
            line = self.process.stderr.readline()
            if not line:
                raise RuntimeError(f"{command[0]} exited before listening")
            if "listening on " in line:
                self.url = line.split("listening on ")[1].strip()
                self.startup_ms = (time.perf_counter() - started) * 1000
            if "inspector on " in line:
                self.admin = line.split("inspector on ")[1].strip()

    def cpu_seconds(self):
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def status(self, field):
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # MiB
        return 0.0

    def stats(self):
        with urllib.request.urlopen(self.admin + "/api/stats") as response:
            return json.load(response)

    def empty_files(self, *paths):
        """Counts are taken: free the space (the files may be in memory)."""
        for path in (Path(self.stdout.name), *paths):
            os.truncate(path, 0)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.stdout.close()
        # A 64 KB run writes gigabytes: keep nothing once it has been counted.
        Path(self.stdout.name).unlink(missing_ok=True)


def wrk(url, body_file, connections, duration):
    env = dict(os.environ, BODY_FILE=str(body_file))
    result = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{duration}", "--timeout", "5s",
         "-s", str(ROOT / "bench/post.lua"), url + "/"],
        capture_output=True, text=True, env=env, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(server, size, connections):
    cpu_before = server.cpu_seconds()
    run = wrk(server.url, SIZES[size], connections, DURATION)
    cpu = server.cpu_seconds() - cpu_before
    requests = max(run["requests"], 1)
    return {
        "rps": run["requests"] / (run["duration_us"] / 1e6),
        "p50_ms": run["p50_us"] / 1000,
        "p99_ms": run["p99_us"] / 1000,
        "non2xx": run["status"],
        "socket_errors": run["connect"] + run["read"] + run["write"] + run["timeout"],
        "peak_rss_mib": server.status("VmHWM"),
        "cpu_s_per_100k": cpu / requests * 100_000,
        "requests": run["requests"],
    }


def count_lines(path):
    with open(path, "rb") as file:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))


def no_loss(server, record_file, lines_before, sent_by_wrk, connections):
    # The server may still be answering what wrk sent last: wait until it is idle.
    stats, deadline = -1, time.time() + 30
    while time.time() < deadline:
        time.sleep(0.3)
        stats_now = server.stats()
        # Builds before the consolidation nested the counts under "store".
        now = stats_now.get("requests", stats_now.get("store", {}).get("requests"))
        if now == stats:
            break
        stats = now
    lines = lines_before + count_lines(record_file)
    return {"record_lines": lines, "stats_requests": stats, "wrk_completed": sent_by_wrk,
            "in_flight_at_wrk_stop": lines - sent_by_wrk, "connections": connections}


def memory_run(workdir):
    """hookscope --format json --record, 1 KB alerts, until MEMORY_REQUESTS: RSS at 100k and at the end."""
    server = Server(targets(workdir)["hookscope"]("memory"), workdir / "memory.out")
    samples = {}
    total = 0
    try:
        while total < MEMORY_REQUESTS:
            run = wrk(server.url, SIZES["1k"], 64, "2s")
            total = server.stats()["requests"]
            if "100k" not in samples and total >= 100_000:
                samples["100k"] = (total, server.status("VmRSS"))
        samples["end"] = (total, server.status("VmRSS"))
        samples["peak"] = (total, server.status("VmHWM"))
        samples["record_lines"] = count_lines(workdir / "record-memory.jsonl")
    finally:
        server.stop()
    return samples


def store_memory_run(workdir):
    """hookscope --format json --store with --store-max-rows 100000, 1 KB alerts, until
    MEMORY_REQUESTS: RSS at 100k and at the end, and the store's size on disk, the database
    and its lines files (flat once retention deletes as fast as requests arrive: SQLite
    reuses freed pages, and a lines file goes once nothing in it is kept)."""
    store = workdir / "memory.db"

    def stored_bytes():
        return sum(path.stat().st_size for path in workdir.glob("memory.db*"))

    server = Server([HOOKSCOPE, "listen", "--port", "0", "--admin", "127.0.0.1:0", "--format", "json",
                     "--store", str(store), "--store-max-rows", "100000"], workdir / "memory.out")
    samples = {}
    total = 0
    try:
        while total < MEMORY_REQUESTS:
            wrk(server.url, SIZES["1k"], 64, "2s")
            total = server.stats()["requests"]
            if "100k" not in samples and total >= 100_000:
                samples["100k"] = (total, server.status("VmRSS"), stored_bytes())
        samples["end"] = (total, server.status("VmRSS"), stored_bytes())
        samples["peak"] = (total, server.status("VmHWM"), stored_bytes())
    finally:
        server.stop()
    return samples


def main():
    default_dir = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    workdir = Path(tempfile.mkdtemp(prefix="hookscope-bench-", dir=os.environ.get("BENCH_DIR", default_dir)))
    print(f"record and stdout files in {workdir}", file=sys.stderr)
    try:
        if sys.argv[1:] == ["store-memory"]:
            memory = store_memory_run(workdir)
            mib = 1024 * 1024
            print(f"memory (hookscope --format json --store --store-max-rows 100000, 1k alerts): "
                  f"RSS {memory['100k'][1]:.1f} MiB and store {memory['100k'][2] / mib:.1f} MiB at "
                  f"{memory['100k'][0]:,} requests; RSS {memory['end'][1]:.1f} MiB and store "
                  f"{memory['end'][2] / mib:.1f} MiB at {memory['end'][0]:,}; peak RSS {memory['peak'][1]:.1f} MiB")
        else:
            run(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(workdir):
    all_targets = targets(workdir)
    results = {}  # (target, size, connections) -> [measurements]
    startup = {name: [] for name in all_targets}
    losses = []
    for round_number in range(ROUNDS):
        for name, command in all_targets.items():
            spec = command(round_number)
            server = Server(spec, workdir / f"{name}-{round_number}.out")
            if isinstance(spec, Peer):
                # A JVM compiles its hot paths as it runs: measured warm, as it would be in use.
                wrk(server.url, SIZES["1k"], 64, "3s")
            startup[name].append(server.startup_ms)
            recorded = 0
            try:
                for size in SIZES:
                    for connections in CONNECTIONS:
                        m = measure(server, size, connections)
                        results.setdefault((name, size, connections), []).append(m)
                        print(f"round {round_number + 1} {name:16} {size:>3} c{connections:<3} "
                              f"{m['rps']:>9.0f} req/s p99 {m['p99_ms']:7.2f} ms", file=sys.stderr)
                        if name in RECORDING:
                            record = workdir / f"record-{round_number}.jsonl"
                            totals = no_loss(server, record, recorded, sum(
                                r[-1]["requests"] for k, r in results.items()
                                if k[0] == name and len(r) == round_number + 1), connections)
                            losses.append(totals)
                            recorded = totals["record_lines"]
                            server.empty_files(record)
                        else:
                            server.empty_files(*[p for p in [workdir / f"ceiling-{round_number}.jsonl"] if p.exists()])
            finally:
                server.stop()
                (workdir / f"record-{round_number}.jsonl").unlink(missing_ok=True)
                # The store, its WAL and whatever else it keeps beside it, of every build.
                for stored in workdir.glob(f"store-*{round_number}.db*"):
                    stored.unlink(missing_ok=True)

    def median(name, size, connections, field):
        return statistics.median(m[field] for m in results[(name, size, connections)])

    # Each hookscope mode against the ceiling that does the same work (when it ran).
    ceiling_of = {"hookscope-quiet": "typed", "hookscope-json": "print", "hookscope": "record"}
    for label in COMPARE:
        ceiling_of.update({f"{label}-quiet": "typed", label: "record"})
    lines = ["| target | alert | conns | req/s | × baseline | × same-work ceiling | p50 ms | p99 ms | p99 × ceiling | non-2xx | socket errors | peak RSS MiB | CPU s / 100k req |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for size in SIZES:
        for connections in CONNECTIONS:
            base = median("baseline", size, connections, "rps") if "baseline" in all_targets else None
            for name in all_targets:
                rps = median(name, size, connections, "rps")
                ceiling = ceiling_of.get(name)
                if ceiling in all_targets:
                    versus = f"{rps / median(ceiling, size, connections, 'rps'):.2f} ({ceiling})"
                    p99_versus = f"{median(name, size, connections, 'p99_ms') / median(ceiling, size, connections, 'p99_ms'):.2f}"
                else:
                    versus = p99_versus = ""
                lines.append(
                    f"| {name} | {size} | {connections} | {rps:,.0f} | {f'{rps / base:.2f}' if base else ''} | {versus} | "
                    f"{median(name, size, connections, 'p50_ms'):.2f} | {median(name, size, connections, 'p99_ms'):.2f} | {p99_versus} | "
                    f"{median(name, size, connections, 'non2xx'):.0f} | {median(name, size, connections, 'socket_errors'):.0f} | "
                    f"{median(name, size, connections, 'peak_rss_mib'):.1f} | {median(name, size, connections, 'cpu_s_per_100k'):.2f} |")
    print("\n".join(lines))
    print()
    print("start-up to the `listening on` line, median ms: " + ", ".join(
        f"{name} {statistics.median(times):.1f}" for name, times in startup.items()))
    # Only a recording target (hookscope with --record) is checked for loss.
    if losses:
        last = losses[-1]
        print(f"no loss (hookscope, last round): record lines {last['record_lines']}, "
              f"/api/stats requests {last['stats_requests']}, wrk completed {last['wrk_completed']} "
              f"(+{last['in_flight_at_wrk_stop']} in flight when wrk stopped, at most the connection count)")
    if os.environ.get("SKIP_MEMORY") != "1":
        memory = memory_run(workdir)
        print(f"memory (hookscope --format json --record, 1k alerts): RSS {memory['100k'][1]:.1f} MiB at "
              f"{memory['100k'][0]:,} requests, {memory['end'][1]:.1f} MiB at {memory['end'][0]:,}; "
              f"peak {memory['peak'][1]:.1f} MiB; record lines {memory['record_lines']:,}")


if __name__ == "__main__":
    main()
