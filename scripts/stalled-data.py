#!/usr/bin/env python3
"""Memory cost of SMTP sessions stalled inside DATA (issue 13, item 1).

Opens SESSIONS connections to a running server's port 25, sends MIB MiB of
message data on each and never the final dot, then prints the server's RSS
(VmRSS of PID) before and after, and per session. With --finish it then
ends every message and counts the 250 replies.

    make build && scripts/demo-setup.sh bin/yubin /tmp/yd
    bin/yubin serve --data /tmp/yd &        # port 25 is 10025 when not root
    scripts/stalled-data.py --pid $! --addr 127.0.0.1:10025 --to demo@example.test
"""
import argparse
import socket
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS for pid %d" % pid)


def reply(f):
    while True:
        line = f.readline().decode()
        if not line:
            raise SystemExit("connection closed")
        if line[3:4] != "-":
            return line.strip()


def expect(f, code, what):
    r = reply(f)
    if not r.startswith(str(code)):
        raise SystemExit(f"{what}: {r}")
    return r


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--addr", default="127.0.0.1:10025")
    p.add_argument("--to", default="demo@example.test")
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--mib", type=int, default=45)
    p.add_argument("--finish", action="store_true", help="then end each message with the final dot")
    a = p.parse_args()
    host, port = a.addr.rsplit(":", 1)
    line = (b"0123456789" * 7 + b"abcdef\r\n")  # 78 bytes
    chunk = line * ((1 << 20) // len(line))
    before = rss_kib(a.pid)
    conns = []
    for i in range(a.sessions):
        s = socket.create_connection((host, int(port)))
        f = s.makefile("rb")
        expect(f, 220, "greeting")
        s.sendall(b"EHLO stalled.test\r\n")
        expect(f, 250, "EHLO")
        s.sendall(b"MAIL FROM:<s@remote.test>\r\n")
        expect(f, 250, "MAIL")
        s.sendall(b"RCPT TO:<%s>\r\n" % a.to.encode())
        expect(f, 250, "RCPT")
        s.sendall(b"DATA\r\n")
        expect(f, 354, "DATA")
        s.sendall(b"From: s@remote.test\r\nSubject: stalled %d\r\n\r\n" % i)
        for _ in range(a.mib):
            s.sendall(chunk)
        conns.append((s, f))
    time.sleep(1)  # let the server read what is in the socket buffers
    after = rss_kib(a.pid)
    print(f"sessions={a.sessions} data={a.mib} MiB each, no final dot")
    print(f"RSS before {before/1024:.0f} MiB, after {after/1024:.0f} MiB, "
          f"{(after-before)/1024/a.sessions:.1f} MiB per session")
    if a.finish:
        ok = 0
        for s, f in conns:
            s.sendall(b".\r\n")
            r = reply(f)
            ok += r.startswith("250")
            if not r.startswith("250"):
                print("reply:", r)
        print(f"finished: {ok} of {len(conns)} got 250; RSS {rss_kib(a.pid)/1024:.0f} MiB")
    for s, f in conns:
        s.close()


if __name__ == "__main__":
    main()
