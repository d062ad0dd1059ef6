#!/usr/bin/env python3
"""metrics.py BUILD_DIR - the daemons' /metrics endpoints, for real.

Starts rtcms-store (two mirrors), rtcms-manager and rtcms-agent, each with
--metrics-listen on port 0 (the bound address is read from the daemon's
log line "metrics: GET /metrics on ADDR"), the agent running
rtcms-counter. Once a checkpoint is durable, every endpoint is scraped
and parsed with prometheus_client's parser, and the values are held
against what the daemons do: PUTs durable with their latency histogram at
the store, both mirrors online, the checkpoints made durable and their
latency at the manager, one node alive and one program running (as
`rtcmsctl status` says too), captures, pulls and heartbeat round trips at
the agent; bytes the manager stored were received by the store.

Then the endpoints meet hostile clients: an idle connection held open, a
garbage request line, an oversized header, a POST, a wrong path; each
daemon still serves /metrics and its own clients afterwards (rtcmsctl
store status, rtcmsctl status, checkpoints still becoming durable), and
the idle connection is closed by the endpoint. Waits are bounds, never
measured thresholds.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from prometheus_client.parser import text_string_to_metric_families

BUILD = os.path.abspath(sys.argv[1])
WAIT = 30.0                    # seconds: a bound on a wait, never a threshold
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CHECKS = 0


def fail(msg):
    print("metrics.py: FAILED: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    global CHECKS
    if not cond:
        fail(msg)
    CHECKS += 1


def host_port(addr):
    host, port = addr.rsplit(":", 1)
    return host.strip("[]"), int(port)


class Daemon:
    def __init__(self, tmp, name, host, args):
        self.name = name
        self.ready_file = os.path.join(tmp, name + ".addr")
        self.log_path = os.path.join(tmp, name + ".log")
        self.log = open(self.log_path, "w+")
        self.started = time.time()
        self.proc = subprocess.Popen(
            [os.path.join(BUILD, "rtcms-" + name)] + args +
            ["--ready-file", self.ready_file, "--metrics-listen", host + ":0"],
            stdout=self.log, stderr=self.log)
        self.address = self.metrics = None

    def logtext(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def wait_ready(self):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                fail("rtcms-%s exited (%s); log:\n%s" % (self.name, self.proc.returncode,
                                                          self.logtext()[-3000:]))
            m = re.search(r"metrics: GET /metrics on (\S+)", self.logtext())
            if m and os.path.exists(self.ready_file):
                with open(self.ready_file) as f:
                    self.address = f.read().strip()
                if self.address:
                    self.metrics = m.group(1)
                    print("%s: %s, metrics on %s" % (self.name, self.address, self.metrics))
                    return
            time.sleep(0.05)
        fail("rtcms-%s: not ready within %d s; log:\n%s" % (self.name, WAIT,
                                                            self.logtext()[-3000:]))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("rtcms-%s did not exit after SIGTERM" % self.name)
        check(rc == 0, "rtcms-%s exited %d after SIGTERM; log:\n%s" %
              (self.name, rc, self.logtext()[-3000:]))


def request(addr, method="GET", path="/metrics", body=None):
    host, port = host_port(addr)
    c = http.client.HTTPConnection(host, port, timeout=WAIT)
    c.request(method, path, body=body)
    r = c.getresponse()
    data = r.read()
    headers = dict((k.lower(), v) for k, v in r.getheaders())
    c.close()
    return r.status, headers, data


class Scrape:
    """One scrape of a daemon, parsed: samples by name and labels."""

    def __init__(self, d):
        status, headers, body = request(d.metrics)
        check(status == 200, "%s: GET /metrics: %d" % (d.name, status))
        check(headers.get("content-type") == CONTENT_TYPE,
              "%s: Content-Type %r" % (d.name, headers.get("content-type")))
        self.d = d
        self.samples = {}
        self.types = {}
        for fam in text_string_to_metric_families(body.decode("utf-8")):
            self.types[fam.name] = fam.type
            for s in fam.samples:
                self.samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        check(self.samples, "%s: no samples" % d.name)

    def value(self, name, **labels):
        key = (name, tuple(sorted(labels.items())))
        if key not in self.samples:
            fail("%s: no sample %s%r; has %r" % (self.d.name, name, labels,
                                                sorted(k[0] for k in self.samples)[:200]))
        return self.samples[key]

    def histogram(self, name):
        """Check a histogram: buckets cumulative, +Inf last and equal to
        _count. Returns its count."""
        check(self.types.get(name) == "histogram", "%s: %s is not a histogram (%r)" %
              (self.d.name, name, self.types.get(name)))
        buckets = sorted((float(dict(k[1])["le"]), v) for k, v in self.samples.items()
                         if k[0] == name + "_bucket")
        check(len(buckets) >= 2 and buckets[-1][0] == float("inf"),
              "%s: %s has no +Inf bucket: %r" % (self.d.name, name, buckets))
        for (_, a), (_, b) in zip(buckets, buckets[1:]):
            check(a <= b, "%s: %s buckets not cumulative: %r" % (self.d.name, name, buckets))
        count = self.value(name + "_count")
        check(buckets[-1][1] == count, "%s: %s +Inf %s != _count %s" %
              (self.d.name, name, buckets[-1][1], count))
        check(self.value(name + "_sum") >= 0, "%s: %s_sum < 0" % (self.d.name, name))
        return count

    def build_info(self):
        out = subprocess.run([os.path.join(BUILD, "rtcms-" + self.d.name), "--version"],
                             capture_output=True, text=True, check=True).stdout
        m = re.match(r"rtcms-\S+ (\S+) \(git (\S+)\)", out)
        check(m, "--version: %r" % out)
        check(self.value("rtcms_build_info", version=m.group(1), revision=m.group(2)) == 1,
              "%s: rtcms_build_info" % self.d.name)
        start = self.value("process_start_time_seconds")
        check(self.d.started - 5 <= start <= time.time() + 5,
              "%s: process_start_time_seconds %s, started at %s" %
              (self.d.name, start, self.d.started))


def ctl(args, key):
    r = subprocess.run([os.path.join(BUILD, "rtcmsctl"), "--key", key, "--json"] + args,
                       capture_output=True, text=True, timeout=WAIT)
    check(r.returncode == 0, "rtcmsctl %s: exit %d: %s %s" % (" ".join(args), r.returncode,
                                                            r.stdout, r.stderr))
    return json.loads(r.stdout)


def wait_for(what, cond):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    fail("no %s within %d s" % (what, WAIT))


# ---- hostile clients ------------------------------------------------------

def raw(addr, data):
    """Send data on a new connection, read until the endpoint closes it."""
    s = socket.create_connection(host_port(addr), timeout=WAIT)
    got = b""
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # it may answer and close before it read everything
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
    except ConnectionResetError:
        pass
    s.close()
    return got


def refused(d, what, answer):
    check(answer == b"" or answer.startswith(b"HTTP/1.1 4") or
          answer.startswith(b"HTTP/1.0 4"),
          "%s: %s answered %r" % (d.name, what, answer[:200]))
    check(b"rtcms_" not in answer, "%s: %s got metrics" % (d.name, what))
    print("%s: %s -> %s" % (d.name, what, answer.split(b"\r\n")[0].decode() or "closed"))


def hostile(d):
    idle = socket.create_connection(host_port(d.metrics), timeout=WAIT)
    refused(d, "a garbage request line",
            raw(d.metrics, b"\x16\x03\x01\x02\x00 \xff\xfe garbage\r\n\r\n"))
    refused(d, "an oversized header",
            raw(d.metrics, b"GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 65536 +
                b"\r\n\r\n"))
    status, headers, _ = request(d.metrics, "POST", "/metrics", b"x=1")
    check(status == 405 and headers.get("allow") == "GET, HEAD",
          "%s: POST /metrics: %d %r" % (d.name, status, headers))
    status, _, _ = request(d.metrics, "GET", "/nowhere")
    check(status == 404, "%s: GET /nowhere: %d" % (d.name, status))
    status, headers, body = request(d.metrics, "HEAD", "/metrics")
    check(status == 200 and body == b"" and headers.get("content-type") == CONTENT_TYPE,
          "%s: HEAD /metrics: %d %r %r" % (d.name, status, headers, body[:100]))
    Scrape(d)  # serves while the idle connection is open
    return idle


def closed_by_peer(d, s):
    s.settimeout(WAIT)
    try:
        b = s.recv(1)
    except ConnectionResetError:
        b = b""
    except socket.timeout:
        fail("%s: an idle connection was not closed within %d s" % (d.name, WAIT))
    check(b == b"", "%s: the idle connection got %r" % (d.name, b))
    s.close()


def main():
    tmp = tempfile.mkdtemp(prefix="rtcms-metrics-")
    key = os.path.join(tmp, "cluster.key")
    subprocess.run([os.path.join(BUILD, "rtcmsctl"), "keygen", key], check=True,
                   stdout=subprocess.DEVNULL)
    mirrors = [os.path.join(tmp, "mirror-a"), os.path.join(tmp, "mirror-b")]
    daemons = []
    try:
        store = Daemon(tmp, "store", "127.0.0.1",
                       ["--listen", "127.0.0.1:0", "--key", key, "--mirror", mirrors[0],
                        "--mirror", mirrors[1]])
        daemons.append(store)
        store.wait_ready()
        # leases long enough that a loaded machine lapses none (the test
        # asserts none did)
        manager = Daemon(tmp, "manager", "127.0.0.1",
                         ["--listen", "127.0.0.1:0", "--key", key, "--store", store.address,
                          "--agent-lease", "2000", "--node-timeout", "3000"])
        daemons.append(manager)
        manager.wait_ready()
        counter = os.path.join(BUILD, "rtcms-counter")
        agent = Daemon(tmp, "agent", "127.0.0.2",
                       ["--listen", "127.0.0.2:0", "--key", key, "--node-id", "2",
                        "--manager", manager.address,
                        "--run", "m1 %s --iterations 1000000 --interval-ms 100" % counter])
        daemons.append(agent)
        agent.wait_ready()

        # a checkpoint durable, as the manager's metrics and status say
        wait_for("durable checkpoint", lambda: Scrape(manager).value(
            "rtcms_manager_checkpoints_durable_total") > 0)
        status = ctl(["--manager", manager.address, "status"], key)

        m = Scrape(manager)  # first: what it stored, the store received before
        s = Scrape(store)
        a = Scrape(agent)
        for x in (m, s, a):
            x.build_info()

        check(m.value("rtcms_manager_checkpoints_durable_total") > 0, "manager: none durable")
        check(m.histogram("rtcms_manager_checkpoint_durable_seconds") > 0,
              "manager: no durable latency observed")
        check(m.value("rtcms_manager_pulls_total", outcome="durable") > 0,
              "manager: no durable pull")
        check(m.value("rtcms_manager_nodes", state="alive") == 1 and
              m.value("rtcms_manager_nodes", state="suspect") == 0 and
              m.value("rtcms_manager_nodes", state="failed") == 0,
              "manager: nodes not 1 alive, 0 suspect, 0 failed")
        alive = sum(1 for n in status["nodes"] if n["alive"])
        check(alive == 1, "rtcmsctl status: %d nodes alive" % alive)
        running = [p for p in status["processes"] if p["state"] == "running"]
        check(len(running) == 1 and running[0]["process"] == "m1" and running[0]["durable"] > 0,
              "rtcmsctl status: %r" % status["processes"])
        check(m.value("rtcms_manager_processes", state="running") == 1,
              "manager: processes running != 1")
        check(m.value("rtcms_manager_heartbeats_total", outcome="answered") > 0,
              "manager: no heartbeat answered")
        check(m.value("rtcms_manager_lease_held") == 1, "manager: no lease")
        check(m.value("rtcms_manager_store_up") == 1, "manager: store not up")
        check(m.value("rtcms_manager_node_failures_total") == 0, "manager: a node failed")
        check(m.value("rtcms_manager_pulls_in_flight") >= 0, "manager: pulls in flight < 0")

        check(s.value("rtcms_store_puts_total", outcome="durable") >=
              m.value("rtcms_manager_pulls_total", outcome="durable"),
              "store: fewer durable PUTs than the manager's durable pulls")
        check(s.histogram("rtcms_store_put_duration_seconds") ==
              s.value("rtcms_store_puts_total", outcome="durable"),
              "store: PUT histogram count != durable PUTs")
        check(s.value("rtcms_store_puts_total", outcome="durable") > 0, "store: no PUT")
        check(s.value("rtcms_store_received_bytes_total") >=
              m.value("rtcms_manager_stored_bytes_total") > 0,
              "store: received fewer bytes than the manager stored")
        for i, path in enumerate(mirrors):
            check(s.value("rtcms_store_mirror_online", mirror=str(i), path=path) == 1,
                  "store: mirror %d (%s) not online" % (i, path))
        s.histogram("rtcms_store_get_duration_seconds")
        check(s.value("rtcms_store_connections") >= 1, "store: no connection")

        check(a.value("rtcms_agent_captures_total", outcome="ok") > 0, "agent: no capture")
        check(a.histogram("rtcms_agent_capture_duration_seconds") > 0, "agent: capture time")
        check(a.value("rtcms_agent_pulls_total", outcome="sent") > 0, "agent: no PULL sent")
        check(a.value("rtcms_agent_sent_bytes_total") > 0, "agent: no bytes sent")
        check(a.histogram("rtcms_agent_heartbeat_rtt_seconds") > 0, "agent: no round trip")
        check(a.value("rtcms_agent_programs") == 1, "agent: programs != 1")
        check(a.value("rtcms_agent_managers_registered") == 1, "agent: not registered")
        check(a.value("rtcms_agent_lease_lapses_total") == 0, "agent: a lease lapse")
        print("metrics.py: values: %d durable (manager), %d PUTs (store), %d captures (agent)" %
              (m.value("rtcms_manager_checkpoints_durable_total"),
               s.value("rtcms_store_puts_total", outcome="durable"),
               a.value("rtcms_agent_captures_total", outcome="ok")))

        # hostile clients, then each daemon still serves its own clients
        idle = [(d, hostile(d)) for d in daemons]
        st = ctl(["--store", store.address, "store", "status"], key)
        check(sorted(x["path"] for x in st["mirrors"] if x["online"]) == sorted(mirrors),
              "after the hostile clients: store status %r" % st)
        before = Scrape(manager).value("rtcms_manager_checkpoints_durable_total")
        wait_for("checkpoint durable after the hostile clients", lambda: Scrape(manager).value(
            "rtcms_manager_checkpoints_durable_total") > before)
        status = ctl(["--manager", manager.address, "status"], key)
        check(sum(1 for n in status["nodes"] if n["alive"]) == 1,
              "after the hostile clients: %r" % status["nodes"])
        for d, s in idle:
            closed_by_peer(d, s)
        for d in daemons:
            Scrape(d)

        while daemons:  # the agent first: it stops its program
            daemons.pop().stop()
    finally:
        for d in daemons:  # what a failure left running
            d.proc.kill()
            d.proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print("metrics.py: passed (%d checks)" % CHECKS)


main()
