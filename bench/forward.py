"""Forward mode against nginx, in the same run: wrk -> PROXY -> the bare baseline.

The proxy is `hookscope listen --forward` (validation, capture and history on; quiet, or also
writing every exchange as a JSON line and to a record file), nginx with `proxy_pass` to the same
baseline, set up as a tunnel's reverse proxy would be (one worker, keep-alive to the upstream,
bodies kept in memory, no access log), or `hyper-proxy`: the baseline example's `--proxy` mode,
the same hyper server and pooled hyper-util client as hookscope with nothing else, which is the
ceiling of forwarding with this stack. The proxy runs on CPU 0; wrk and the baseline
share CPU 1, the same for every proxy. Proxies take turns for ROUNDS rounds; the table shows
medians and each one's ratio to nginx.

Called by bench/forward.sh, which builds and installs what is needed.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the same wrk runner, payloads and settings)

ROOT = bench.ROOT
CONNECTIONS = [int(c) for c in os.environ.get("CONNECTIONS", "64").split(",")]


wait_listening = bench.wait_listening
free_port = bench.free_port


class Nginx:
    def __init__(self, upstream, workdir):
        self.dir = workdir / "nginx"
        self.dir.mkdir(exist_ok=True)
        port = free_port()
        d = self.dir
        (d / "nginx.conf").write_text(f"""
daemon off; master_process off; worker_processes 1; error_log stderr error; pid {d}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  client_max_body_size 2m; client_body_buffer_size 128k;
  upstream app {{ server {upstream.removeprefix('http://')}; keepalive 256; }}
  server {{
    listen 127.0.0.1:{port} reuseport;
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }}
  }}
}}
""")
        self.process = subprocess.Popen(
            ["taskset", "-c", "0", shutil.which("nginx") or "/usr/sbin/nginx", "-e", "stderr",
             "-p", str(d), "-c", str(d / "nginx.conf")], stdout=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{port}"
        wait_listening(port, self.process)

    def cpu_seconds(self):
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / bench.CLK_TCK

    def status(self, field):
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        return 0.0

    def empty_files(self, *paths):
        pass

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=20)


def mitmdump(upstream):
    port = free_port()
    return bench.Peer([str(bench.PEERS / "venv/bin/mitmdump"), "--mode", f"reverse:{upstream}",
                       "--listen-host", "127.0.0.1", "--listen-port", str(port), "--quiet"], port)


def proxies(upstream, workdir):
    common = [bench.HOOKSCOPE, "listen", "--port", "0", "--admin", "127.0.0.1:0",
              "--forward", upstream]
    found = {
        "nginx": lambda r: Nginx(upstream, workdir),
        "hyper-proxy": lambda r: bench.Server(
            [str(ROOT / "target/release/examples/baseline"), "0", "--proxy", upstream],
            workdir / f"hyper-{r}.out"),
        # mitmproxy as a reverse proxy (PyPI, installed by bench/forward.sh), printing nothing.
        "mitmdump": lambda r: bench.Server(mitmdump(upstream), workdir / f"mitmdump-{r}.out"),
        "hookscope-forward": lambda r: bench.Server(common + ["--format", "quiet"],
                                                    workdir / f"quiet-{r}.out"),
        "hookscope-forward-json-record": lambda r: bench.Server(
            common + ["--format", "json", "--record", str(workdir / f"record-{r}.jsonl")],
            workdir / f"json-{r}.out"),
    }
    # COMPARE=label=path: the quiet forward of another build, in the same rounds.
    for label, binary in bench.COMPARE.items():
        found[f"{label}-forward"] = lambda r, binary=binary: bench.Server(
            [binary, *common[1:], "--format", "quiet"], workdir / f"{label}-{r}.out")
    if bench.ONLY:
        found = {name: start for name, start in found.items() if name in bench.ONLY}
    return found


def main():
    default_dir = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    workdir = Path(tempfile.mkdtemp(prefix="hookscope-forward-", dir=os.environ.get("BENCH_DIR", default_dir)))
    upstream_process = subprocess.Popen(
        ["taskset", "-c", "1", str(ROOT / "target/release/examples/baseline"), "0"],
        stderr=subprocess.PIPE, text=True)
    upstream = upstream_process.stderr.readline().split("listening on ")[1].strip()
    try:
        run(upstream, workdir)
    finally:
        upstream_process.terminate()
        upstream_process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def run(upstream, workdir):
    all_proxies = proxies(upstream, workdir)
    results = {}
    for round_number in range(bench.ROUNDS):
        for name, start in all_proxies.items():
            proxy = start(round_number)
            try:
                for size in bench.SIZES:
                    for connections in CONNECTIONS:
                        m = bench.measure(proxy, size, connections)
                        results.setdefault((name, size, connections), []).append(m)
                        print(f"round {round_number + 1} {name:30} {size:>3} c{connections:<3} "
                              f"{m['rps']:>9.0f} req/s p99 {m['p99_ms']:7.2f} ms non-2xx {m['non2xx']}",
                              file=sys.stderr)
                        proxy.empty_files()
                        record = workdir / f"record-{round_number}.jsonl"
                        if record.exists():
                            os.truncate(record, 0)
            finally:
                proxy.stop()

    def median(name, size, connections, field):
        return statistics.median(m[field] for m in results[(name, size, connections)])

    reference = "nginx" if "nginx" in all_proxies else next(iter(all_proxies))
    print(f"| proxy (wrk → proxy → baseline) | alert | conns | req/s | × {reference} | p50 ms | p99 ms | p99 × {reference} | non-2xx | peak RSS MiB | CPU s / 100k req |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for size in bench.SIZES:
        for connections in CONNECTIONS:
            base = median(reference, size, connections, "rps")
            base_p99 = median(reference, size, connections, "p99_ms")
            for name in all_proxies:
                rps = median(name, size, connections, "rps")
                p99 = median(name, size, connections, "p99_ms")
                print(f"| {name} | {size} | {connections} | {rps:,.0f} | {rps / base:.2f} | "
                      f"{median(name, size, connections, 'p50_ms'):.2f} | {p99:.2f} | {p99 / base_p99:.2f} | "
                      f"{median(name, size, connections, 'non2xx'):.0f} | "
                      f"{median(name, size, connections, 'peak_rss_mib'):.1f} | "
                      f"{median(name, size, connections, 'cpu_s_per_100k'):.2f} |")


if __name__ == "__main__":
    main()
