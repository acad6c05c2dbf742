package dkimkey

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rsa"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"yubin/internal/testutil/teststore"
)

func TestKeysKeptAndUsable(t *testing.T) {
	st := teststore.New(t, teststore.Options{Domains: []teststore.Domain{{Name: "example.com"}, {Name: "www.example.com", Parent: "example.com"}}})
	if _, err := ForDomain(t.Context(), st, "unknown.test"); err == nil {
		t.Fatal("keys made for a domain that is not ours")
	}
	k1, err := ForDomain(t.Context(), st, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != 2 || k1[0].Algorithm != "ed25519" || k1[1].Algorithm != "rsa" {
		t.Fatalf("keys %+v", k1)
	}
	if _, ok := k1[0].Signer.(ed25519.PrivateKey); !ok {
		t.Fatalf("ed25519 signer is %T", k1[0].Signer)
	}
	if rk, ok := k1[1].Signer.(*rsa.PrivateKey); !ok || rk.N.BitLen() != 2048 {
		t.Fatalf("rsa signer %T", k1[1].Signer)
	}
	k2, _ := ForDomain(t.Context(), st, "EXAMPLE.com")
	if !k1[1].Signer.(*rsa.PrivateKey).Equal(k2[1].Signer) {
		t.Fatal("keys regenerated instead of kept")
	}
	kc, _ := ForDomain(t.Context(), st, "www.example.com")
	if kc[1].Signer.(*rsa.PrivateKey).Equal(k1[1].Signer) {
		t.Fatal("child domain shares the parent's key")
	}

	// Sign with each key and verify against the published TXT record.
	txt := map[string]string{}
	for _, k := range k1 {
		v, err := k.TXT()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(v, "v=DKIM1; k="+k.Algorithm+"; p=") {
			t.Fatalf("TXT %q", v)
		}
		txt[k.DNSName()] = v
	}
	msg := "From: info@example.com\r\nTo: x@other.test\r\nSubject: hi\r\n\r\nhello\r\n"
	for _, k := range k1 {
		var signed bytes.Buffer
		err := dkim.Sign(&signed, strings.NewReader(msg), &dkim.SignOptions{Domain: k.Domain, Selector: k.Selector, Signer: k.Signer})
		if err != nil {
			t.Fatal(err)
		}
		vs, err := dkim.VerifyWithOptions(&signed, &dkim.VerifyOptions{LookupTXT: func(name string) ([]string, error) {
			return []string{txt[name]}, nil
		}})
		if err != nil || len(vs) != 1 || vs[0].Err != nil {
			t.Fatalf("%s: verify %v %+v", k.Algorithm, err, vs)
		}
	}
}
