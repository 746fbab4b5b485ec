"""Team mode's benchmark: hookscope on one PostgreSQL, alone and as two instances,
against the embedded store (the same work, one process's file), in the same run.

    bench/team.sh                          # 3 rounds of 5 s, 64 connections, 1 KB alerts
    ROUNDS=5 DURATION=10s bench/team.sh

Every request carries a new alertId (bench/post.lua): each is a new delivery, so
each costs the shared decision (an upsert on its own row) and an id, as Panther's
alerts do. Targets take turns, round after round, so that a noisy neighbour hurts
them all alike. On this 2-core machine PostgreSQL, hookscope and wrk share the CPUs:
the figures say what one PostgreSQL costs per request, not how far a real team's
database scales. CPU seconds per 100k requests count hookscope and every
PostgreSQL process (the postmaster's children, live and exited).

The shared decision alone: pgbench runs the upsert hookscope makes for each request
(and the id query) against the same cluster, for its latency and rate.
"""
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "target" / "bench"
ROUNDS = int(os.environ.get("ROUNDS", "3"))
DURATION = os.environ.get("DURATION", "5s")
CONNECTIONS = int(os.environ.get("CONNECTIONS", "64"))
HOOKSCOPE = str(ROOT / "target" / "release" / "hookscope")
BODY = OUT / "alert-1k.json"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PASSWORD = "bench"


def postgres_bin():
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not versions:
        raise SystemExit("bench/team.py needs PostgreSQL (apt-get install postgresql)")
    return versions[-1].parent


def as_postgres(command):
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class Cluster:
    def __init__(self, workdir):
        self.bin = postgres_bin()
        self.dir = workdir / "pg"
        self.dir.mkdir()
        (self.dir / "pw").write_text(PASSWORD)
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "postgres:postgres", str(self.dir)], check=True)
        self.port = free_port()
        subprocess.run(as_postgres([str(self.bin / "initdb"), "-D", str(self.dir / "data"), "-U", "postgres",
                                    "--auth-local=trust", "--auth-host=scram-sha-256",
                                    f"--pwfile={self.dir / 'pw'}"]), check=True, capture_output=True)
        self.ctl("start")

    def ctl(self, action):
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        subprocess.run(as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-l",
                                    str(self.dir / "log"), "-o", options, "-w", "-m", "fast", action]),
                       check=True, capture_output=True)

    def sql(self, database, sql):
        return subprocess.run(as_postgres(["psql", "-h", str(self.dir), "-p", str(self.port), "-U", "postgres",
                                           "-d", database, "-At", "-c", sql]),
                              check=True, capture_output=True, text=True).stdout

    def url(self, database):
        return f"postgres://postgres:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def cpu_seconds(self):
        """The postmaster's CPU, its exited children's, and its live children's."""
        postmaster = int((self.dir / "data" / "postmaster.pid").read_text().split()[0])
        total = process_cpu(postmaster, children=True)
        for child in subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True,
                                    text=True).stdout.split():
            total += process_cpu(int(child))
        return total

    def stop(self):
        self.ctl("stop")


def free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_cpu(pid, children=False):
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    used = int(fields[11]) + int(fields[12])
    if children:
        used += int(fields[13]) + int(fields[14])
    return used / CLK_TCK


class Instance:
    def __init__(self, store, admin=False):
        self.process = subprocess.Popen(
            [HOOKSCOPE, "listen", "--port", "0", "--admin", "127.0.0.1:0", "--format", "quiet",
             "--store", store], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.url = self.admin = None
        while self.url is None or (admin and self.admin is None):
            line = self.process.stderr.readline()
            if not line:
                raise RuntimeError("hookscope exited before listening")
            if "listening on " in line:
                self.url = line.split("listening on ")[1].strip()
            if "inspector on " in line:
                self.admin = line.split("inspector on ")[1].strip()

    def cpu_seconds(self):
        return process_cpu(self.process.pid)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def wrk(url, connections, prefix):
    env = dict(os.environ, BODY_FILE=str(BODY), ID_PREFIX=prefix)
    return subprocess.Popen(
        ["wrk", "-t1", f"-c{connections}", f"-d{DURATION}", "--timeout", "10s",
         "-s", str(ROOT / "bench/post.lua"), url + "/"],
        stdout=subprocess.PIPE, text=True, env=env)


def measure(instances, cluster, label):
    """Every instance loaded at once, the connections shared among them."""
    hookscope_before = sum(i.cpu_seconds() for i in instances)
    database_before = cluster.cpu_seconds() if cluster else 0
    runs = [wrk(instance.url, CONNECTIONS // len(instances), f"{label}{n}-{time.time_ns()}")
            for n, instance in enumerate(instances)]
    results = [json.loads(run.communicate()[0].strip().splitlines()[-1]) for run in runs]
    hookscope = sum(i.cpu_seconds() for i in instances) - hookscope_before
    database = (cluster.cpu_seconds() if cluster else 0) - database_before
    per_100k = 100_000 / max(sum(r["requests"] for r in results), 1)
    return {
        "rps": sum(r["requests"] / (r["duration_us"] / 1e6) for r in results),
        "p99_ms": max(r["p99_us"] for r in results) / 1000,
        "non2xx": sum(r["status"] for r in results),
        "errors": sum(r["connect"] + r["read"] + r["write"] + r["timeout"] for r in results),
        "cpu_s_per_100k": (hookscope + database) * per_100k,
        "hookscope_cpu_s_per_100k": hookscope * per_100k,
        "postgres_cpu_s_per_100k": database * per_100k,
    }


def pgbench(cluster, database, script, clients):
    """pgbench on one statement: its rate and mean latency."""
    path = cluster.dir / "statement.sql"
    path.write_text(script)
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
    seconds = DURATION.rstrip("s")
    output = subprocess.run(as_postgres(["pgbench", "-h", str(cluster.dir), "-p", str(cluster.port), "-U",
                                         "postgres", "-n", "-M", "prepared", "-f", str(path), "-c", str(clients),
                                         "-j", "1", "-T", seconds, database]),
                            check=True, capture_output=True, text=True).stdout
    tps = float(next(line for line in output.splitlines() if line.startswith("tps")).split("=")[1].split()[0])
    latency = float(next(line for line in output.splitlines() if "latency average" in line).split("=")[1].split()[0])
    return tps, latency


def arrive_script(group):
    """The call hookscope makes for a group of arrivals, each a new alert."""
    keys = ", ".join(f"'bench-' || :n || '-{k}'" for k in range(group))
    return (f"\\set n random(1, 1000000000)\n"
            f"SELECT * FROM hookscope.arrive(array_fill(''::text, ARRAY[{group}]), "
            f"array_fill(false, ARRAY[{group}]), ARRAY[{keys}], array_fill(0::bigint, ARRAY[{group}]), "
            f"array_fill(NULL::integer, ARRAY[{group}]));\n")


def live_feed_delays(cluster, database, count=50):
    """Two instances: how long after the first answers an alert the second's live
    feed (/api/events) carries it."""
    import threading
    import urllib.request
    instances = [Instance(cluster.url(database), admin=True) for _ in range(2)]
    try:
        seen = {}
        stream = urllib.request.urlopen(instances[1].admin + "/api/events", timeout=30)

        def read():
            for raw in stream:
                line = raw.decode(errors="replace")
                if line.startswith("data:") and "feed-" in line:
                    marker = line.split("feed-", 1)[1].split('\\', 1)[0].split('"', 1)[0]
                    seen.setdefault(marker, time.perf_counter())

        threading.Thread(target=read, daemon=True).start()
        answered = {}
        body = BODY.read_text()
        for n in range(count):
            marker = str(n)
            request = urllib.request.Request(
                instances[0].url + "/", data=body.replace("b90c19e66e160e194a5b3b94ec27fb7c", f"feed-{marker}").encode(),
                headers={"content-type": "application/json"})
            urllib.request.urlopen(request).read()
            answered[marker] = time.perf_counter()
            time.sleep(0.02)
        deadline = time.time() + 10
        while len(seen) < count and time.time() < deadline:
            time.sleep(0.05)
        return sorted((seen[m] - answered[m]) * 1000 for m in answered if m in seen), count
    finally:
        for instance in instances:
            instance.stop()


def main():
    subprocess.run(["python3", str(ROOT / "bench/payloads.py"), str(OUT)], check=True)
    workdir = Path(tempfile.mkdtemp(prefix="hookscope-team-bench-"))
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
    cluster = Cluster(workdir)
    samples = {name: [] for name in ("embedded", "team-1", "team-2")}
    try:
        for round_number in range(ROUNDS):
            db = f"round{round_number}"
            cluster.sql("postgres", f"CREATE DATABASE {db}")
            for name in samples:
                if name == "embedded":
                    instances = [Instance(str(workdir / f"store-{round_number}.db"))]
                else:
                    instances = [Instance(cluster.url(db)) for _ in range(int(name[-1]))]
                try:
                    samples[name].append(measure(instances, None if name == "embedded" else cluster, name))
                finally:
                    for instance in instances:
                        instance.stop()
                print(name, samples[name][-1], flush=True)
        decisions = {group: pgbench(cluster, "round0", arrive_script(group), 8) for group in (1, 16)}
        ids = pgbench(cluster, "round0", "SELECT nextval('hookscope.exchange_ids');\n", 8)
        cluster.sql("postgres", "CREATE DATABASE feed")
        delays, sent = live_feed_delays(cluster, "feed")
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    base = statistics.median(s["rps"] for s in samples["embedded"])
    print(f"\n{ROUNDS} rounds of {DURATION}, {CONNECTIONS} connections, 1 KB alerts, a new alertId each (medians)")
    print(f"{'target':<10} {'req/s':>9} {'vs embedded':>12} {'p99 ms':>8} {'CPU s/100k':>11} "
          f"{'hookscope':>10} {'postgres':>9} {'non-2xx':>8} {'errors':>7}")
    for name, runs in samples.items():
        rps = statistics.median(r["rps"] for r in runs)
        cpu = {field: statistics.median(r[field] for r in runs)
               for field in ("cpu_s_per_100k", "hookscope_cpu_s_per_100k", "postgres_cpu_s_per_100k")}
        print(f"{name:<10} {rps:>9.0f} {rps / base:>12.2f} {statistics.median(r['p99_ms'] for r in runs):>8.1f} "
              f"{cpu['cpu_s_per_100k']:>11.2f} {cpu['hookscope_cpu_s_per_100k']:>10.2f} "
              f"{cpu['postgres_cpu_s_per_100k']:>9.2f} "
              f"{sum(r['non2xx'] for r in runs):>8} {sum(r['errors'] for r in runs):>7}")
    for group, (tps, latency) in decisions.items():
        print(f"the shared decision alone, {group} a call (pgbench, 8 clients): {tps * group:.0f} decisions/s, "
              f"{latency * 1000:.0f} µs a call")
    print(f"the id alone (pgbench, 8 clients, one id a query): {ids[0]:.0f}/s, {ids[1] * 1000:.0f} µs mean latency")
    if delays:
        print(f"live feed, one instance's answer to the other's /api/events: {len(delays)} of {sent} arrived, "
              f"median {statistics.median(delays):.1f} ms, slowest {delays[-1]:.1f} ms")
    else:
        print(f"live feed: none of {sent} arrived")


if __name__ == "__main__":
    main()
