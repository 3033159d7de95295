package install

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestKeygenSignVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	pubLine, privLine, err := Keygen()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicKey(string(pubLine))
	if err != nil {
		t.Fatalf("ParsePublicKey(%q): %v", pubLine, err)
	}
	priv, err := ParsePrivateKey(privLine)
	if err != nil {
		t.Fatalf("ParsePrivateKey: %v", err)
	}
	if !pub.Equal(priv.Public()) {
		t.Fatal("the public line is not the private key's public half")
	}
	if id := KeyID(pub); len(id) != 16 || !strings.Contains(string(pubLine), "id="+id) {
		t.Errorf("KeyID = %q; want 16 hex digits, written in the public line %q", id, pubLine)
	}
	archive := []byte("an archive")
	sig, err := Sign(archive, priv)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := ParseSignature(sig.Marshal())
	if err != nil {
		t.Fatalf("ParseSignature(Marshal()): %v", err)
	}
	if diff := cmp.Diff(sig, decoded); diff != "" {
		t.Errorf("signature round trip (-want +got):\n%s", diff)
	}
	trusted, err := LoadTrusted(string(pubLine))
	if err != nil {
		t.Fatal(err)
	}
	if err := trusted.Verify(archive, decoded); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestLoadTrustedReadsFilesAndInlineKeys(t *testing.T) {
	t.Parallel()
	a, b, c := newKey(t), newKey(t), newKey(t)
	path := filepath.Join(t.TempDir(), "trusted.keys")
	content := "# the team's keys\n\n" + string(EncodePublicKey(a.pub)) + "  " + string(EncodePublicKey(b.pub))
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := LoadTrusted(path, strings.TrimSpace(string(EncodePublicKey(c.pub))))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{KeyID(a.pub), KeyID(b.pub), KeyID(c.pub)}
	got := k.IDs()
	if diff := cmp.Diff(slices.Sorted(slices.Values(want)), got); diff != "" {
		t.Errorf("IDs (-want +got):\n%s", diff)
	}
}

func TestLoadTrustedNamesEveryBadLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "trusted.keys")
	_, privLine, err := Keygen()
	if err != nil {
		t.Fatal(err)
	}
	content := "deus-plugin-key rsa AAAA\n" + string(privLine) + "deus-plugin-key ed25519 c2hvcnQ=\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadTrusted(path, filepath.Join(dir, "missing.keys"), "deus-plugin-key ed25519 !!")
	for _, want := range []string{
		path + " line 1: algorithm \"rsa\"",
		path + " line 2: found a deus-plugin-private-key, want a deus-plugin-key",
		path + " line 3: key is 5 bytes, want 32",
		"missing.keys",
		"trusted key 2: key:",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadTrusted error %v; want it to contain %q", err, want)
		}
	}
}

func TestParsePrivateKeyRefusesAnythingButOneKey(t *testing.T) {
	t.Parallel()
	pubLine, privLine, err := Keygen()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, data, want string
	}{
		{"a public key", string(pubLine), "found a deus-plugin-key"},
		{"two private keys", string(privLine) + string(privLine), "found 2"},
		{"nothing but comments", "# empty\n", "found 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParsePrivateKey([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	k, other := newKey(t), newKey(t)
	archive := []byte("the archive as signed")
	good := k.sign(t, archive)
	indexSig, err := SignIndex(archive, k.priv)
	if err != nil {
		t.Fatal(err)
	}
	forged := other.sign(t, archive)
	forged.KeyID = good.KeyID
	for _, tc := range []struct {
		name    string
		archive []byte
		sig     Signature
		is      error
		want    string
	}{
		{
			name: "an archive changed after signing", archive: []byte("the archive as changed"), sig: good,
			is: ErrChecksum, want: "signature is for sha256 " + good.SHA256 + ", file is " + Checksum([]byte("the archive as changed")),
		},
		{
			name: "a signature by a key nobody trusts", archive: archive, sig: other.sign(t, archive),
			is: ErrUnknownKey, want: "signed by key " + KeyID(other.pub),
		},
		{
			name: "another key's signature under a trusted key's ID", archive: archive, sig: forged,
			is: ErrBadSignature, want: "does not verify with key " + good.KeyID,
		},
		{
			name: "an index's signature passed off as an archive's", archive: archive, sig: indexSig,
			is: ErrBadSignature, want: "does not verify",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := k.trusted.Verify(tc.archive, tc.sig)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %v containing %q", err, tc.is, tc.want)
			}
		})
	}
}

func TestParseSignatureRefusesMalformedFiles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, data, want string
	}{
		{"not JSON", "key_id: x", "decode signature"},
		{"an unknown field", `{"key_id":"0011223344556677","sha256":"` + strings.Repeat("a", 64) + `","signature":"","algo":"rsa"}`, "unknown field"},
		{"a short key ID", `{"key_id":"0011","sha256":"` + strings.Repeat("a", 64) + `","signature":""}`, "key_id \"0011\""},
		{"an uppercase checksum", `{"key_id":"0011223344556677","sha256":"` + strings.Repeat("A", 64) + `","signature":""}`, "sha256"},
		{"a signature of the wrong size", `{"key_id":"0011223344556677","sha256":"` + strings.Repeat("a", 64) + `","signature":"c2hvcnQ="}`, "want 64 bytes"},
		{"two objects", `{} {}`, "data after the object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseSignature([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestSignRefusesAKeyOfTheWrongSize(t *testing.T) {
	t.Parallel()
	if _, err := Sign([]byte("x"), ed25519.PrivateKey("short")); err == nil {
		t.Error("Sign with a 5-byte key succeeded")
	}
}
