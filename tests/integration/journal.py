#!/usr/bin/env python3
"""journal.py BUILD_DIR - the daemons' log lines as journal fields.

The test is the journal: in a mount namespace of its own (journal.sh runs
it under unshare -m) it mounts a tmpfs where the journal's socket lives,
listens on /run/systemd/journal/socket (a Unix datagram socket, the
journal's native protocol: "KEY=value" lines, or KEY, a little-endian
64-bit length and the value for values with a newline; an entry too big
for a datagram comes as a memfd), and starts rtcms-store, rtcms-manager
and rtcms-agent (running rtcms-counter) with stderr to a file that
JOURNAL_STREAM names, as systemd does. It checks that each line arrives
as an entry whose PRIORITY matches its level, with RTCMS_COMPONENT,
RTCMS_NODE, SYSLOG_IDENTIFIER and CODE_FILE; that the lines about a
checkpoint (the store's PUT, the manager's "durable", the agent's
capture) carry RTCMS_PROCESS, RTCMS_INCARNATION and RTCMS_SEQUENCE equal
to the ones they name; that nothing went to stderr meanwhile; and, once
the socket is gone, that the lines go to stderr with their priority
prefix. Waits are generous and never measured.
"""
import array
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

BUILD = os.path.abspath(sys.argv[1])
WAIT = 60.0           # seconds: a bound on a wait, never a threshold
JOURNAL_DIR = "/run/systemd/journal"
SOCKET = JOURNAL_DIR + "/socket"
PRIORITY_OF_TAG = {"ERROR ": "3", "WARN ": "4", "debug ": "7"}


def fail(msg):
    print("journal.py: FAILED: " + msg, file=sys.stderr)
    sys.exit(1)


def private_journal_dir():
    """A tmpfs of this namespace where the journal's socket is: over its
    directory, or the nearest one above it that exists."""
    for d in (JOURNAL_DIR, "/run/systemd", "/run"):
        if os.path.isdir(d):
            subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", d],
                           check=True)
            break
    os.makedirs(JOURNAL_DIR, exist_ok=True)


def parse_entry(data):
    """The fields of one native-protocol entry."""
    fields, i = {}, 0
    while i < len(data):
        nl = data.find(b"\n", i)
        if nl < 0:
            fail("entry without a final newline: %r" % data[i:i + 80])
        line = data[i:nl]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            i = nl + 1
        else:  # KEY\n, 64-bit little-endian length, value, \n
            key = line
            (n,) = struct.unpack("<Q", data[nl + 1:nl + 9])
            value = data[nl + 9:nl + 9 + n]
            if data[nl + 9 + n:nl + 10 + n] != b"\n":
                fail("binary field %r not ended by a newline" % key)
            i = nl + 10 + n
        fields[key.decode()] = value.decode(errors="replace")
    return fields


class Journal:
    def __init__(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(SOCKET)
        self.sock.settimeout(0.2)
        self.entries = []

    def receive_one(self):
        try:
            data, anc, _, _ = self.sock.recvmsg(1 << 20, socket.CMSG_SPACE(4 * 4))
        except socket.timeout:
            return None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
                for fd in fds:  # a memfd holding the entry
                    with os.fdopen(fd, "rb") as f:
                        f.seek(0)
                        data += f.read()
        e = parse_entry(data)
        self.entries.append(e)
        return e

    def wait_for(self, what, match, daemons):
        """The first entry (received or to come) for which match is true."""
        for e in self.entries:
            if match(e):
                return e
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            e = self.receive_one()
            if e is None:
                for d in daemons:
                    if d.proc.poll() is not None:
                        fail("rtcms-%s exited (%s) waiting for %s; stderr:\n%s" %
                             (d.component, d.proc.returncode, what, d.stderr_text()))
                continue
            if match(e):
                return e
        fail("no %s within %d s; last entries:\n%s" %
             (what, WAIT, "\n".join(repr(x) for x in self.entries[-10:])))

    def drain(self):
        """What has arrived so far (the agent logs at debug all along)."""
        self.sock.setblocking(False)
        try:
            while True:
                try:
                    self.receive_one()
                except BlockingIOError:
                    break
        finally:
            self.sock.settimeout(0.2)


class Daemon:
    def __init__(self, tmp, component, name, bracket, args):
        self.component, self.name, self.bracket = component, name, bracket
        self.ready_file = os.path.join(tmp, component + ".addr")
        self.stderr_path = os.path.join(tmp, component + ".stderr")
        self.stderr = open(self.stderr_path, "w+")
        st = os.fstat(self.stderr.fileno())
        env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
        env.pop("NOTIFY_SOCKET", None)
        self.proc = subprocess.Popen(
            [os.path.join(BUILD, "rtcms-" + component), "--name", name] + args +
            ["--ready-file", self.ready_file],
            env=env, stdout=subprocess.DEVNULL, stderr=self.stderr)

    def stderr_text(self):
        self.stderr.flush()
        with open(self.stderr_path) as f:
            return f.read()

    def address(self, journal):
        """Its address, once it listens (the journal's entries kept)."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if os.path.exists(self.ready_file):
                with open(self.ready_file) as f:
                    addr = f.read().strip()
                if addr:
                    return addr
            if self.proc.poll() is not None:
                fail("rtcms-%s exited (%s) before it listened; stderr:\n%s" %
                     (self.component, self.proc.returncode, self.stderr_text()))
            journal.receive_one()
        fail("rtcms-%s wrote no address within %d s" % (self.component, WAIT))


def check_entry(e, daemons):
    """Every entry: a daemon's, its PRIORITY the level of its MESSAGE."""
    d = next((x for x in daemons if x.component == e.get("RTCMS_COMPONENT")), None)
    if d is None:
        fail("entry without a known RTCMS_COMPONENT: %r" % e)
    if e.get("RTCMS_NODE") != d.name:
        fail("rtcms-%s entry with RTCMS_NODE=%r, not %r: %r" %
             (d.component, e.get("RTCMS_NODE"), d.name, e))
    if e.get("SYSLOG_IDENTIFIER") != "rtcms-" + d.component:
        fail("entry with SYSLOG_IDENTIFIER=%r: %r" % (e.get("SYSLOG_IDENTIFIER"), e))
    head = "[%s] " % d.bracket
    msg = e.get("MESSAGE", "")
    if not msg.startswith(head):
        fail("MESSAGE does not start with %r: %r" % (head, e))
    rest = msg[len(head):]
    want = next((p for tag, p in PRIORITY_OF_TAG.items() if rest.startswith(tag)), "6")
    if e.get("PRIORITY") != want:
        fail("PRIORITY=%r for a line of level %s: %r" % (e.get("PRIORITY"), want, e))
    if not e.get("CODE_FILE", "").startswith("src/") or not e.get("CODE_LINE", "").isdigit() \
            or not e.get("CODE_FUNC"):
        fail("entry without its code location: %r" % e)


def checkpoint_line(e, component, pattern):
    """Is e the component's line matching pattern, whose groups are the
    process, incarnation and sequence it names? Then its fields must be
    those."""
    if e.get("RTCMS_COMPONENT") != component:
        return False
    m = re.search(pattern, e.get("MESSAGE", ""))
    if not m:
        return False
    proc, inc, seq = m.group(1), m.group(2), m.group(3)
    got = (e.get("RTCMS_PROCESS"), e.get("RTCMS_INCARNATION"), e.get("RTCMS_SEQUENCE"))
    if got != (proc, inc, seq):
        fail("%s line about %s %s/%s has RTCMS_PROCESS, _INCARNATION, _SEQUENCE %r: %r" %
             (component, proc, inc, seq, got, e))
    print("%s: %s  [RTCMS_PROCESS=%s RTCMS_INCARNATION=%s RTCMS_SEQUENCE=%s PRIORITY=%s]" %
          (component, e["MESSAGE"], proc, inc, seq, e["PRIORITY"]))
    return True


def main():
    private_journal_dir()
    journal = Journal()
    tmp = tempfile.mkdtemp(prefix="rtcms-journal-")
    key = os.path.join(tmp, "cluster.key")
    subprocess.run([os.path.join(BUILD, "rtcmsctl"), "keygen", key], check=True,
                   stdout=subprocess.DEVNULL)
    daemons = []
    try:
        store = Daemon(tmp, "store", "store-j", "store",
                       ["--listen", "127.0.0.1:0", "--key", key,
                        "--mirror", os.path.join(tmp, "m1")])
        daemons.append(store)
        manager = Daemon(tmp, "manager", "manager-j", "manager-j",
                         ["--listen", "127.0.0.1:0", "--key", key,
                          "--store", store.address(journal)])
        daemons.append(manager)
        counter = os.path.join(BUILD, "rtcms-counter")
        agent = Daemon(tmp, "agent", "agent-j", "agent-j",
                       ["--listen", "127.0.0.1:0", "--key", key, "--node-id", "7",
                        "--log-level", "debug",
                        "--manager", manager.address(journal),
                        "--run", "c1 %s --iterations 0 --interval-ms 100 --table-mib 1" %
                        counter])
        daemons.append(agent)

        journal.wait_for("the agent's warning (no data keyring)",
                         lambda e: e.get("RTCMS_COMPONENT") == "agent" and
                         "WARN no data keyring" in e.get("MESSAGE", "") and
                         e.get("PRIORITY") == "4", daemons)
        started = journal.wait_for(
            "the agent's line of the program's start",
            lambda e: e.get("RTCMS_COMPONENT") == "agent" and
            "[program c1] started pid" in e.get("MESSAGE", ""), daemons)
        if (started.get("RTCMS_PROCESS"), started.get("RTCMS_INCARNATION")) != ("c1", "1") \
                or "RTCMS_SEQUENCE" in started:
            fail("the start of c1 without RTCMS_PROCESS=c1 RTCMS_INCARNATION=1 (or with a "
                 "sequence): %r" % started)
        journal.wait_for("the agent's debug line of a capture", lambda e: capture_line(e),
                         daemons)
        journal.wait_for("the manager's durable line", lambda e: checkpoint_line(
            e, "manager", r"\[manager -> store\] (c1) (\d+)/(\d+) durable"), daemons)
        journal.wait_for("the store's PUT line", lambda e: checkpoint_line(
            e, "store", r"\] PUT (c1) (\d+)/(\d+)\S*: \d+ bytes .* durable"), daemons)
        journal.drain()
        for e in journal.entries:
            check_entry(e, daemons)
        # nothing went to stderr while the journal took the lines
        for d in daemons:
            lines = [l for l in d.stderr_text().splitlines() if re.match(r"^(<\d>)?\[", l) or
                     re.match(r"^\d{4}-\d\d-\d\dT", l)]
            if lines:
                fail("rtcms-%s wrote log lines to stderr with the journal listening: %r" %
                     (d.component, lines[:5]))
        print("journal.py: %d entries, each with its PRIORITY, RTCMS_COMPONENT and "
              "RTCMS_NODE" % len(journal.entries))

        # the journal goes away: the lines go to stderr, with their priority
        os.unlink(SOCKET)
        journal.sock.close()
        for d in reversed(daemons):
            d.proc.send_signal(signal.SIGTERM)
            try:
                d.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                fail("rtcms-%s did not exit after SIGTERM" % d.component)
            want = "<6>[%s] signal 15" % d.bracket
            if not any(l.startswith(want) for l in d.stderr_text().splitlines()):
                fail("rtcms-%s: no %r on stderr once the journal was gone; stderr:\n%s" %
                     (d.component, want, d.stderr_text()))
        print("journal.py: without the journal's socket the lines went to stderr "
              "(<6>[...] signal 15)")
        daemons = []
    finally:
        for d in daemons:
            if d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
        subprocess.run(["rm", "-rf", tmp])
    print("journal.py: passed")


def capture_line(e):
    """The agent's "captured checkpoint N" of c1: debug, with its fields."""
    if e.get("RTCMS_COMPONENT") != "agent":
        return False
    m = re.search(r"\[program c1\] captured checkpoint (\d+)", e.get("MESSAGE", ""))
    if not m:
        return False
    got = (e.get("RTCMS_PROCESS"), e.get("RTCMS_INCARNATION"), e.get("RTCMS_SEQUENCE"),
           e.get("PRIORITY"))
    if got != ("c1", "1", m.group(1), "7"):
        fail("the capture of c1 %s has RTCMS_PROCESS, _INCARNATION, _SEQUENCE, PRIORITY "
             "%r: %r" % (m.group(1), got, e))
    print("agent: %s  [RTCMS_SEQUENCE=%s PRIORITY=7]" % (e["MESSAGE"], m.group(1)))
    return True


main()
