#!/usr/bin/env python3
"""Memory cost of IMAP APPENDs stalled inside their literal (issue 13, item 2).

Logs in on a running server's IMAPS port SESSIONS times, announces an APPEND
of MIB MiB on each and sends SENT MiB of it, never the rest, then prints the
server's RSS (VmRSS of PID) before and after, and per APPEND.

    make build && scripts/demo-setup.sh bin/yubin /tmp/yd
    bin/yubin serve --data /tmp/yd &        # IMAPS is 10993 when not root
    scripts/stalled-append.py --pid $! --addr 127.0.0.1:10993 \\
        --user demo@example.test --password "$(cut -d' ' -f2 /tmp/yd/demo-password)"

(The account's quota must take MIB MiB: yubin account quota demo@example.test 0.)
"""
import argparse
import socket
import ssl
import time


def vmrss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for field in status:
            if field.startswith("VmRSS:"):
                return int(field.split()[1])
    raise SystemExit(f"no VmRSS for pid {pid}")


def until_tagged(f, tag):
    while True:
        line = f.readline()
        if not line:
            raise SystemExit("connection closed")
        if line.startswith(tag + b" "):
            return line.decode().strip()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--addr", default="127.0.0.1:10993")
    p.add_argument("--user", default="demo@example.test")
    p.add_argument("--password", required=True)
    p.add_argument("--sessions", type=int, default=6)
    p.add_argument("--mib", type=int, default=40, help="the size each APPEND announces")
    p.add_argument("--sent", type=int, default=20, help="MiB of it sent")
    a = p.parse_args()
    host, port = a.addr.rsplit(":", 1)
    tls = ssl.create_default_context()
    tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE  # the demo's certificate is self-signed
    conns = []
    for _ in range(a.sessions):
        s = tls.wrap_socket(socket.create_connection((host, int(port))))
        f = s.makefile("rb")
        f.readline()  # greeting
        s.sendall(b"l LOGIN %s %s\r\n" % (a.user.encode(), a.password.encode()))
        if not (r := until_tagged(f, b"l")).startswith("l OK"):
            raise SystemExit(f"LOGIN: {r}")
        conns.append((s, f))
    time.sleep(0.5)
    before = vmrss_kib(a.pid)
    block = (b"0123456789abcdef" * 6 + b"\r\n") * ((1 << 20) // 98)
    for s, f in conns:
        s.sendall(b"a APPEND INBOX {%d}\r\n" % (a.mib << 20))
        if not (r := f.readline()).startswith(b"+"):
            raise SystemExit(f"APPEND: {r!r}")
        for _ in range(a.sent):
            s.sendall(block + b"x" * ((1 << 20) - len(block)))
    time.sleep(2)  # let the server read what is in the socket buffers
    after = vmrss_kib(a.pid)
    print(f"{a.sessions} APPENDs of {a.mib} MiB stalled after {a.sent} MiB")
    print(f"RSS before {before/1024:.0f} MiB, after {after/1024:.0f} MiB, "
          f"{(after-before)/1024/a.sessions:.1f} MiB per APPEND")
    for s, _ in conns:
        s.close()


if __name__ == "__main__":
    main()
