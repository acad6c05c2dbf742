# Drives Yubin's POP3 server with Python's poplib, as a real client would.
# Usage: poplib_client.py MODE HOST PORT USER PASS
#   MODE stls:     POP3 + STLS, then USER/PASS
#   MODE ssl:      POP3_SSL (implicit TLS), then AUTH PLAIN via poplib's _shortcmd
# Prints one line per check; exits non-zero on the first failure.
import base64, poplib, ssl, sys

mode, host, port, user, pw = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

if mode == "stls":
    p = poplib.POP3(host, port, timeout=10)
    caps = p.capa()
    assert "STLS" in caps and "USER" not in caps, caps
    try:
        p.user(user)
        raise SystemExit("USER accepted before STLS")
    except poplib.error_proto as e:
        print("refused before TLS:", e)
    p.stls(context=ctx)
    caps = p.capa()
    assert "USER" in caps and "SASL" in caps and "STLS" not in caps, caps
    p.user(user)
    p.pass_(pw)
else:
    p = poplib.POP3_SSL(host, port, context=ctx, timeout=10)
    ir = base64.b64encode(b"\0" + user.encode() + b"\0" + pw.encode()).decode()
    print(p._shortcmd("AUTH PLAIN " + ir).decode())

count, size = p.stat()
print("stat", count, size)
resp, listing, _ = p.list()
print("list", [l.decode() for l in listing])
resp, uidls, _ = p.uidl()
print("uidl", [l.decode() for l in uidls])
resp, lines, octets = p.retr(1)
body = b"\r\n".join(lines) + b"\r\n"
print("retr1", octets, len(body))
sys.stdout.write("retr1-body " + base64.b64encode(body).decode() + "\n")
resp, lines, _ = p.top(1, 0)
print("top1", len(lines))
p.dele(count)
print("dele", count)
p.quit()
print("done")
