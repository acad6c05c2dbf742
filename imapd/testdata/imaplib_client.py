# Drives Yubin's IMAP server with Python's imaplib, as a real client would.
# Usage: imaplib_client.py MODE HOST PORT USER PASS
#   MODE starttls: IMAP4 on the plain port, STARTTLS, then LOGIN
#   MODE ssl:      IMAP4_SSL (implicit TLS), then AUTHENTICATE PLAIN
# Prints one line per check; exits non-zero on the first failure.
import imaplib, ssl, sys

mode, host, port, user, pw = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

def ok(res, what):
    typ, data = res
    if typ != "OK":
        raise SystemExit("%s failed: %s %r" % (what, typ, data))
    return data

if mode == "starttls":
    m = imaplib.IMAP4(host, port, timeout=10)
    assert "STARTTLS" in m.capabilities and "LOGINDISABLED" in m.capabilities, m.capabilities
    try:
        m.login(user, pw)
        raise SystemExit("LOGIN accepted before STARTTLS")
    except imaplib.IMAP4.error as e:
        print("refused before TLS:", e)
    ok(m.starttls(ssl_context=ctx), "STARTTLS")
    assert "AUTH=PLAIN" in m.capabilities and "LOGINDISABLED" not in m.capabilities, m.capabilities
    ok(m.login(user, pw), "LOGIN")
else:
    m = imaplib.IMAP4_SSL(host, port, ssl_context=ctx, timeout=10)
    ok(m.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (user, pw)).encode()), "AUTHENTICATE")
typ, data = m.capability()
print("caps", data[0].decode())

boxes = ok(m.list(), "LIST")
print("list", len(boxes), b" ".join(boxes).decode())
ok(m.create("Archive/2024"), "CREATE")
ok(m.rename("Archive/2024", "Archive/2025"), "RENAME")
ok(m.subscribe("Archive/2025"), "SUBSCRIBE")
print("lsub", len(ok(m.lsub(), "LSUB")))
print("status", ok(m.status("INBOX", "(MESSAGES UIDNEXT UNSEEN SIZE)"), "STATUS")[0].decode())

msg = b"From: py@example.org\r\nSubject: from imaplib\r\n\r\nappended by python\r\n"
typ, data = m.append("INBOX", "(\\Flagged)", imaplib.Time2Internaldate(1700000000), msg)
print("append", typ, data[0].decode())
assert typ == "OK" and b"APPENDUID" in data[0], data

print("select", ok(m.select("INBOX"), "SELECT")[0].decode())
typ, data = m.fetch("1:*", "(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)")
ok((typ, data), "FETCH")
print("fetch", len(data))
typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[]<0.4>)")
ok((typ, data), "FETCH sections")
print("sections", repr(data[0][1]), repr(data[1][1]))
typ, data = m.uid("FETCH", "1:*", "(RFC822)")
ok((typ, data), "UID FETCH RFC822")
print("rfc822", data[0][1].decode().replace("\r\n", "|"))
print("search", ok(m.search(None, "FLAGGED"), "SEARCH")[0].decode())
print("search-text", ok(m.search(None, "TEXT", "python"), "SEARCH TEXT")[0].decode())
print("uid-search", ok(m.uid("SEARCH", "ALL"), "UID SEARCH")[0].decode())
print("store", ok(m.store("1", "+FLAGS", "(\\Seen $Py)"), "STORE")[0].decode())
typ, data = m.copy("1:*", "Archive/2025")
print("copy", typ, data[0].decode())
assert typ == "OK" and b"COPYUID" in data[0], data
typ, data = m._simple_command("MOVE", "1", "Trash")
print("move", typ)
assert typ == "OK", data
typ, data = m.getquotaroot("INBOX")
ok((typ, data), "GETQUOTAROOT")
print("quotaroot", data)
ok(m.store("1:*", "+FLAGS.SILENT", "(\\Deleted)"), "STORE deleted")
print("expunge", ok(m.expunge(), "EXPUNGE"))
ok(m.select("Archive/2025", readonly=True), "EXAMINE")
print("examined", ok(m.search(None, "ALL"), "SEARCH")[0].decode())
ok(m.close(), "CLOSE")
ok(m.delete("Archive/2025"), "DELETE")
print("namespace", ok(m.namespace(), "NAMESPACE")[0].decode())
m.logout()
print("done")
