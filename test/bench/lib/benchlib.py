# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) 2026 The Sluice Authors
"""The shared benchmark harness: run Sluice and its peers side by side, one after
another in the same run, and report.

- Server: a server process started by a command (optionally pinned with taskset),
  with a readiness check, its CPU time read from /proc/<pid>/stat (utime+stime of
  every thread, so reactors, workers and helpers all count; with_children=True adds
  its descendant processes), stopped by its pid.
- fio(): runs fio with --output-format=json and returns IOPS, bandwidth, latency.
- Report: rows of results written as JSON, a Markdown table and a PNG chart
  (gnuplot, clustered bars per workload), plus the machine and its load. A pair run
  in several rounds is reported by its medians.

A benchmark script builds its servers and workloads, calls measure() for each
(server, workload) pair, and hands the rows to a Report.
"""

import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_times(pid):
    """(utime, stime) of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        # The command may contain spaces: fields start after the last ')'.
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def proc_cpu_seconds(pid):
    """utime+stime of a process (all its threads), in seconds."""
    return sum(proc_cpu_times(pid))


def proc_tree_cpu_times(pid):
    """(utime, stime) of a process and all its live descendants, in seconds: for a
    server whose work is split over child processes (nbdfuse runs nbdkit as its
    child)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone since listdir, or not readable
        children.setdefault(ppid, []).append(int(entry))
    user, system, todo = 0.0, 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            u, k = proc_cpu_times(p)
        except OSError:
            continue
        user += u
        system += k
        todo += children.get(p, [])
    return user, system


def machine_info():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "loadavg": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def pinned(cmd, cpus):
    """Prefix cmd with taskset when cpus (e.g. "0") is given."""
    if cpus is None or shutil.which("taskset") is None:
        return list(cmd)
    return ["taskset", "-c", str(cpus)] + list(cmd)


class Server:
    """A server under test. ready() returns True once it serves."""

    def __init__(self, name, cmd, ready, cpus=None, setup=None, cleanup=None, env=None,
                 log=None, with_children=False):
        self.name = name
        self.with_children = with_children
        self.cmd = pinned(cmd, cpus)
        self.ready = ready
        self.setup = setup
        self.cleanup = cleanup
        self.env = env
        self.log = log
        self.proc = None

    def start(self, timeout=30):
        if self.setup:
            self.setup()
        out = open(self.log, "a") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT,
                                     env=self.env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: "
                                   f"{' '.join(self.cmd)}")
            try:
                if self.ready():
                    return
            except Exception:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready")

    @property
    def pid(self):
        return self.proc.pid

    def cpu_times(self):
        """(user, kernel) CPU seconds so far."""
        if self.with_children:
            return proc_tree_cpu_times(self.proc.pid)
        return proc_cpu_times(self.proc.pid)

    def cpu_seconds(self):
        return sum(self.cpu_times())

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.cleanup:
            self.cleanup()


def rounds(count, tmp):
    """Yield a fresh directory under tmp for each of count rounds, announcing each
    when there are several. A directory per round: a server may leave its socket
    behind (nbdkit then refuses to start on it)."""
    for rnd in range(count):
        if count > 1:
            print(f"round {rnd + 1} of {count}", flush=True)
        path = os.path.join(tmp, f"round{rnd + 1}")
        os.mkdir(path)
        yield path


def fio(args, cpus=None, timeout=600):
    """Run fio; return (summary dict, raw json). Raises on failure."""
    cmd = pinned(["fio", "--output-format=json"] + list(args), cpus)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"fio failed ({r.returncode}): {r.stderr[-2000:]}")
    out = json.loads(r.stdout[r.stdout.index("{"):])
    s = {"read_iops": 0.0, "write_iops": 0.0, "read_bw": 0, "write_bw": 0,
         "read_ios": 0, "write_ios": 0, "lat_us": 0.0, "errors": 0}
    lat_n = 0
    for job in out["jobs"]:
        s["errors"] += job.get("error", 0)
        for d in ("read", "write"):
            s[f"{d}_iops"] += job[d]["iops"]
            s[f"{d}_bw"] += job[d]["bw_bytes"]
            s[f"{d}_ios"] += job[d]["total_ios"]
            if job[d]["total_ios"] > 0:
                s["lat_us"] += job[d]["clat_ns"]["mean"] / 1000.0
                lat_n += 1
    if lat_n:
        s["lat_us"] /= lat_n
    s["iops"] = s["read_iops"] + s["write_iops"]
    s["bw"] = s["read_bw"] + s["write_bw"]
    s["ios"] = s["read_ios"] + s["write_ios"]
    return s, out


def measure(server, fio_args, fio_cpus=None):
    """One fio run against a running server, with the server's CPU over the run.
    The CPU window is the whole fio process: do not use --ramp_time, whose I/Os
    fio leaves out of total_ios."""
    t0, (u0, k0) = time.time(), server.cpu_times()
    s, _ = fio(fio_args, cpus=fio_cpus)
    t1, (u1, k1) = time.time(), server.cpu_times()
    cpu = (u1 - u0) + (k1 - k0)
    s["server_cpu_s"] = cpu
    # The kernel's share: what the server's system calls cost (socket buffers,
    # copies, wake-ups), which no user-space change removes.
    s["server_sys_us_per_io"] = 1e6 * (k1 - k0) / s["ios"] if s["ios"] else 0.0
    s["wall_s"] = t1 - t0
    s["server_cpu_pct"] = 100.0 * cpu / (t1 - t0) if t1 > t0 else 0.0
    s["server_cpu_us_per_io"] = 1e6 * cpu / s["ios"] if s["ios"] else 0.0
    return s


class Report:
    """Rows of results: {"workload", "server", metrics...}."""

    def __init__(self, title, outdir, ours="sluice", references=()):
        self.title = title
        self.outdir = outdir
        self.ours = ours
        # Reference rows (a trivial server, say): shown, never the "best peer".
        self.references = set(references)
        self.rows = []
        # Runs that gave no result: {"server", "what", "error"}. A bench exits 1 with any.
        self.failures = []
        self.machine = machine_info()
        self.command = ""
        os.makedirs(outdir, exist_ok=True)

    def add(self, workload, server, metrics, kind="throughput"):
        """One run's result. A (workload, server) pair run several times (rounds)
        gets one row per run; get() and the tables take their medians."""
        row = {"workload": workload, "server": server, "kind": kind}
        row.update(metrics)
        self.rows.append(row)
        return row

    def fail(self, server, what, error, count=1):
        """A run (or count of them: a server that did not start) that gave no result."""
        print(f"{server}: {what}: {error}", flush=True)
        self.failures.extend({"server": server, "what": what, "error": str(error)}
                             for _ in range(count))

    def rounds(self):
        """The most runs any (workload, server) pair had."""
        counts = {}
        for r in self.rows:
            key = (r["workload"], r["server"])
            counts[key] = counts.get(key, 0) + 1
        return max(counts.values(), default=0)

    def workloads(self, kind=None):
        seen = []
        for r in self.rows:
            if (kind is None or r["kind"] == kind) and r["workload"] not in seen:
                seen.append(r["workload"])
        return seen

    def servers(self):
        seen = []
        for r in self.rows:
            if r["server"] not in seen:
                seen.append(r["server"])
        return seen

    def get(self, workload, server):
        """The pair's result: its one row, or the median of each number over its
        rounds (with "runs", the number of rounds)."""
        runs = [r for r in self.rows if r["workload"] == workload and r["server"] == server]
        if not runs:
            return None
        if len(runs) == 1:
            return runs[0]
        merged = dict(runs[0])
        for key, value in runs[0].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                merged[key] = statistics.median(r.get(key, 0) for r in runs)
        merged["runs"] = len(runs)
        return merged

    def ratio(self, workload, key, higher_is_better=True):
        """Ours over the best peer, for key; None if missing."""
        mine = self.get(workload, self.ours)
        peers = [self.get(workload, s).get(key) for s in self.servers()
                 if s != self.ours and s not in self.references]
        peers = [p for p in peers if p]
        if mine is None or not peers or not mine.get(key):
            return None
        best = max(peers) if higher_is_better else min(peers)
        return mine[key] / best

    def markdown(self):
        servers = self.servers()
        lines = [f"## {self.title}", "",
                 f"Machine: {self.machine['cpus']} CPUs, {self.machine['cpu_model']}, "
                 f"Linux {self.machine['kernel']}, load average "
                 f"{' '.join('%.2f' % x for x in self.machine['loadavg'])} at start, "
                 f"{self.machine['date']}.", ""]
        if self.command:
            lines += ["Command:", "", "```", self.command, "```", ""]
        if self.rounds() > 1:
            lines += [f"Medians of {self.rounds()} rounds (every server runs each workload "
                      "once per round, in turn).", ""]
        tp = self.workloads("throughput")
        if tp:
            lines.append("| Workload | " + " | ".join(f"{s} IOPS" for s in servers) +
                         f" | {self.ours} / best peer |")
            lines.append("| --- | " + " | ".join("---:" for _ in servers) + " | ---: |")
            for w in tp:
                cells = []
                for s in servers:
                    r = self.get(w, s)
                    cells.append(f"{r['iops']:,.0f}" if r and r.get("iops") else "n/a")
                q = self.ratio(w, "iops")
                lines.append(f"| {w} | " + " | ".join(cells) +
                             f" | {'%.2f' % q if q else 'n/a'} |")
            lines.append("")
        cost = self.workloads("cost")
        if cost:
            lines.append("| Fixed-rate workload | " +
                         " | ".join(f"{s} IOPS / CPU % / µs per I/O (in the kernel)"
                                    for s in servers) +
                         f" | {self.ours} CPU / best peer |")
            lines.append("| --- | " + " | ".join("---:" for _ in servers) + " | ---: |")
            for w in cost:
                cells = []
                for s in servers:
                    r = self.get(w, s)
                    cells.append(f"{r['iops']:,.0f} / {r['server_cpu_pct']:.0f} % / "
                                 f"{r['server_cpu_us_per_io']:.2f} "
                                 f"({r.get('server_sys_us_per_io', 0):.2f})" if r else "n/a")
                q = self.ratio(w, "server_cpu_us_per_io", higher_is_better=False)
                lines.append(f"| {w} | " + " | ".join(cells) +
                             f" | {'%.2f' % q if q else 'n/a'} |")
            lines.append("")
        return "\n".join(lines)

    def chart(self, path):
        """Clustered bars of IOPS per throughput workload (gnuplot, PNG)."""
        if shutil.which("gnuplot") is None:
            return False
        tp = self.workloads("throughput")
        servers = self.servers()
        if not tp:
            return False
        data = os.path.join(self.outdir, "chart.dat")
        with open(data, "w") as f:
            f.write("workload " + " ".join(f'"{s}"' for s in servers) + "\n")
            for w in tp:
                vals = []
                for s in servers:
                    r = self.get(w, s)
                    vals.append(str(r["iops"] / 1000.0) if r and r.get("iops") else "0")
                f.write(f'"{w}" ' + " ".join(vals) + "\n")
        script = f"""
set terminal pngcairo size 1100,560 noenhanced font ",10"
set output '{path}'
set title '{self.title}'
set ylabel 'kIOPS'
set style data histograms
set style histogram cluster gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top right
set grid ytics
set xtics rotate by -20
set yrange [0:*]
plot for [i=2:{len(servers) + 1}] '{data}' using i:xtic(1) title columnheader(i)
"""
        r = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True)
        if r.returncode != 0:
            # pngcairo may be missing from gnuplot-nox builds: fall back to png.
            script = script.replace("pngcairo", "png")
            r = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True)
        return r.returncode == 0

    def write(self):
        base = os.path.join(self.outdir, "results")
        with open(base + ".json", "w") as f:
            medians = [self.get(w, srv) for w in self.workloads() for srv in self.servers()]
            json.dump({"title": self.title, "machine": self.machine,
                       "command": self.command, "rows": self.rows,
                       "medians": [m for m in medians if m is not None],
                       "failures": self.failures}, f, indent=2)
        md = self.markdown()
        with open(base + ".md", "w") as f:
            f.write(md + "\n")
        png = self.chart(base + ".png")
        return base + ".json", base + ".md", base + ".png" if png else None
