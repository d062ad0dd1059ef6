#!/usr/bin/env python3
"""sd_notify.py BUILD_DIR - each daemon under a stand-in for systemd.

The test is the service manager: it makes a Unix datagram socket, starts
rtcms-store, rtcms-manager and rtcms-agent with NOTIFY_SOCKET naming it
and WATCHDOG_USEC set, and checks what each sends: READY=1 once, and only
when the daemon accepts connections (a connect to its address succeeds at
that moment), STATUS= lines (the store's mirrors, the agent registered
with its manager), WATCHDOG=1 again and again, and STOPPING=1 after
SIGTERM, then a clean exit. Waits are generous and never measured.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.path.abspath(sys.argv[1])
WAIT = 30.0           # seconds: a bound on a wait, never a threshold
WATCHDOG_USEC = 400000
failures = []


def fail(msg):
    print("sd_notify.py: FAILED: " + msg, file=sys.stderr)
    sys.exit(1)


class Daemon:
    def __init__(self, tmp, name, args):
        self.name = name
        self.path = os.path.join(tmp, name + ".notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.ready_file = os.path.join(tmp, name + ".addr")
        self.log = open(os.path.join(tmp, name + ".log"), "w+")
        env = dict(os.environ, NOTIFY_SOCKET=self.path, WATCHDOG_USEC=str(WATCHDOG_USEC))
        env.pop("WATCHDOG_PID", None)
        self.proc = subprocess.Popen([os.path.join(BUILD, "rtcms-" + name)] + args +
                                     ["--ready-file", self.ready_file],
                                     env=env, stdout=self.log, stderr=self.log)
        self.messages = []   # every datagram, in order, as its lines

    def receive(self, until, what):
        """Collect datagrams until until(lines) is true for one; return it."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                if self.proc.poll() is not None:
                    fail("rtcms-%s exited (%s) waiting for %s; log:\n%s" %
                         (self.name, self.proc.returncode, what, self.logtext()))
                continue
            lines = data.decode().split("\n")
            self.messages.append(lines)
            if until(lines):
                return lines
        fail("rtcms-%s: no %s within %d s; got %r; log:\n%s" %
             (self.name, what, WAIT, self.messages[-10:], self.logtext()))

    def logtext(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-3000:]

    def address(self):
        with open(self.ready_file) as f:
            return f.read().strip()


def connectable(addr):
    host, port = addr.rsplit(":", 1)
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5):
            return True
    except OSError:
        return False


def ready(d):
    lines = d.receive(lambda l: "READY=1" in l, "READY=1")
    # at READY the daemon serves: its address is written and accepts
    if not os.path.exists(d.ready_file):
        fail("rtcms-%s sent READY=1 before it listened (no ready file)" % d.name)
    if not connectable(d.address()):
        fail("rtcms-%s sent READY=1 but %s refuses connections" % (d.name, d.address()))
    status = [l for l in lines if l.startswith("STATUS=")]
    if not status:
        fail("rtcms-%s: READY=1 without STATUS=: %r" % (d.name, lines))
    print("%s: %s" % (d.name, " | ".join(lines)))
    return status[0][len("STATUS="):]


def watchdog(d, kicks=3):
    for _ in range(kicks):
        d.receive(lambda l: "WATCHDOG=1" in l, "WATCHDOG=1")


def stop(d):
    d.proc.send_signal(signal.SIGTERM)
    lines = d.receive(lambda l: "STOPPING=1" in l, "STOPPING=1 after SIGTERM")
    print("%s: %s" % (d.name, " | ".join(lines)))
    try:
        rc = d.proc.wait(timeout=WAIT)
    except subprocess.TimeoutExpired:
        d.proc.kill()
        fail("rtcms-%s did not exit after SIGTERM" % d.name)
    if rc != 0:
        fail("rtcms-%s exited %d after SIGTERM; log:\n%s" % (d.name, rc, d.logtext()))
    if sum(1 for m in d.messages if "READY=1" in m) != 1:
        fail("rtcms-%s sent READY=1 %d times" %
             (d.name, sum(1 for m in d.messages if "READY=1" in m)))


def main():
    tmp = tempfile.mkdtemp(prefix="rtcms-notify-")
    key = os.path.join(tmp, "cluster.key")
    subprocess.run([os.path.join(BUILD, "rtcmsctl"), "keygen", key], check=True,
                   stdout=subprocess.DEVNULL)
    daemons = []
    try:
        store = Daemon(tmp, "store", ["--listen", "127.0.0.1:0", "--key", key,
                                      "--mirror", os.path.join(tmp, "m1"),
                                      "--mirror", os.path.join(tmp, "m2")])
        daemons.append(store)
        status = ready(store)
        if "2 of 2 mirrors online" not in status:
            fail("store STATUS= does not name its mirrors: %r" % status)
        watchdog(store)

        manager = Daemon(tmp, "manager", ["--listen", "127.0.0.1:0", "--key", key,
                                          "--store", store.address()])
        daemons.append(manager)
        status = ready(manager)
        if "store up" not in status and "store DOWN" not in status:
            fail("manager STATUS= does not name the store: %r" % status)
        watchdog(manager)

        agent = Daemon(tmp, "agent", ["--listen", "127.0.0.1:0", "--key", key,
                                      "--node-id", "7", "--manager", manager.address()])
        daemons.append(agent)
        ready(agent)
        # a state change: the registration shows in a later STATUS=
        lines = agent.receive(lambda l: any("registered with 1 of 1 managers" in x
                                            for x in l if x.startswith("STATUS=")),
                              "STATUS= registered with 1 of 1 managers")
        print("agent: %s" % " | ".join(lines))
        watchdog(agent)

        for d in reversed(daemons):
            stop(d)
        daemons = []
    finally:
        for d in daemons:
            if d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
        subprocess.run(["rm", "-rf", tmp])
    print("sd_notify.py: passed")


main()
