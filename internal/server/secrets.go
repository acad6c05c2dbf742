package server

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"yubin/internal/config"
	"yubin/internal/storage"
	"yubin/internal/tlsutil"
)

// ExposedSecret is a file holding a secret that every user of the machine
// may read (or write): its permission bits for "other" are not zero.
// Group access is allowed on purpose: a key shared through a group such as
// Debian's ssl-cert (mode 0640) is a common, sound set-up.
type ExposedSecret struct {
	What string // the config key naming the file, or what it is
	Path string
	Mode fs.FileMode
}

func (e ExposedSecret) String() string {
	return fmt.Sprintf("%s %s is open to every user on this machine (mode %04o): chmod o-rwx %s", e.What, e.Path, e.Mode.Perm(), e.Path)
}

// secretFiles are the files of cfg that hold secrets (without their
// modes): the TLS key (configured, or the self-signed one in the data dir),
// the smart host's password and the store (password hashes, DKIM keys).
func secretFiles(cfg config.Config) []ExposedSecret {
	var files []ExposedSecret
	switch {
	case cfg.TLS.Cert != "":
		files = append(files, ExposedSecret{What: "tls.key", Path: cfg.TLS.Key})
	case !cfg.TLS.ACME:
		files = append(files, ExposedSecret{What: "the self-signed TLS key", Path: tlsutil.SelfSignedKey(filepath.Join(cfg.DataDir, "tls"))})
	}
	if cfg.Outbound.SmartHostPasswordFile != "" {
		files = append(files, ExposedSecret{What: "outbound.smart_host_password_file", Path: cfg.Outbound.SmartHostPasswordFile})
	}
	if cfg.Store.Backend == "postgres" {
		return files // the store is in the database, not a file here
	}
	return append(files, ExposedSecret{What: "the store", Path: storage.Describe(cfg.DataDir)})
}

// ExposedSecrets returns the files of cfg that hold secrets and that every
// user may read or write. Files that do not exist (yet) are skipped: the
// server makes its own with mode 0600.
//
// The server warns about them at start and "yubin config check" reports
// them; neither refuses, so that an upgrade never stops a server over a
// key that was 0644 before.
func ExposedSecrets(cfg config.Config) []ExposedSecret {
	var out []ExposedSecret
	for _, f := range secretFiles(cfg) {
		fi, err := os.Stat(f.Path)
		if err != nil {
			continue
		}
		if f.Mode = fi.Mode().Perm(); f.Mode&0o007 != 0 {
			out = append(out, f)
		}
	}
	return out
}

// warnExposedSecrets logs one warning for each exposed secret file.
func warnExposedSecrets(cfg config.Config, log *slog.Logger) {
	for _, e := range ExposedSecrets(cfg) {
		log.Warn("a file holding a secret is open to every user on this machine",
			"what", e.What, "file", e.Path, "mode", fmt.Sprintf("%04o", e.Mode.Perm()), "fix", "chmod o-rwx "+e.Path)
	}
}

// CheckFiles reads the files cfg names that the server reads at start —
// the TLS certificate and key, the ACME directory's CA, the smart host's
// password — and returns what would stop it from starting.
func CheckFiles(cfg config.Config) []error {
	var errs []error
	if cfg.TLS.Cert != "" {
		if _, err := tlsutil.Load(cfg.TLS.Cert, cfg.TLS.Key); err != nil {
			errs = append(errs, fmt.Errorf("tls.cert, tls.key: %w", err))
		}
	}
	if cfg.TLS.ACME && cfg.TLS.ACMEDirectoryCA != "" {
		if _, err := tlsutil.RootsClient(cfg.TLS.ACMEDirectoryCA); err != nil {
			errs = append(errs, fmt.Errorf("tls.acme_directory_ca: %w", err))
		}
	}
	if p := cfg.Outbound.SmartHostPasswordFile; p != "" {
		if _, err := readFirstLine(p); err != nil {
			errs = append(errs, fmt.Errorf("outbound.smart_host_password_file: %w", err))
		}
	}
	return errs
}
