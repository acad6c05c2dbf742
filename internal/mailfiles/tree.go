package mailfiles

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"yubin/internal/mutf7"
)

// Folder is one mailbox of a tree of mail files.
type Folder struct {
	// Name is the mailbox: "INBOX", or levels separated by "/"
	// ("Work/2024"), as the files name it.
	Name   string
	Source *Source
}

// Tree reads path as mailboxes, for "yubin import":
//
//   - a Maildir (a directory with cur/ or new/) is INBOX, and each of its
//     Maildir++ folders (a subdirectory ".Sub.Folder" with cur/ or new/)
//     the mailbox Sub/Folder; folder names are modified UTF-7 on disk
//     (as Dovecot and Courier write them) and decoded. A directory that
//     holds only such folders is a Maildir without messages in INBOX;
//   - an mbox file is INBOX;
//   - any other directory holds mbox files, each a mailbox named by its
//     path below the directory, without an .mbox extension, a
//     Thunderbird "Name.sbd" directory standing for the mailbox Name
//     ("Work.sbd/2024" is Work/2024); the file Inbox (any case) at the
//     top is INBOX. Files that are not mbox files (they do not begin
//     with "From "), hidden ones and Thunderbird's .msf indexes are
//     left out, and returned in skipped with the reason. Empty files
//     are empty mailboxes.
//
// The folders come sorted by name, INBOX first. A path with no mailbox at
// all is an error.
func Tree(path string) (folders []Folder, skipped []string, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if fi.Mode().IsRegular() {
		if err := checkMbox(path); err != nil {
			return nil, nil, err
		}
		return []Folder{{Name: "INBOX", Source: &Source{Path: path, Kind: MBox}}}, nil, nil
	}
	if !fi.IsDir() {
		return nil, nil, fmt.Errorf("%s: not a file or a directory", path)
	}
	if folders, ok, err := maildirTree(path); err != nil || ok {
		return folders, nil, err
	}
	folders, skipped, err = mboxTree(path)
	if err == nil && len(folders) == 0 {
		err = fmt.Errorf("%s: no mail here: not a Maildir (no cur/ or new/, no .Folder/ with them) and no mbox files in it", path)
	}
	return folders, skipped, err
}

// isMaildir reports whether dir has cur/ or new/.
func isMaildir(dir string) bool {
	for _, sub := range []string{"cur", "new"} {
		if st, err := os.Stat(filepath.Join(dir, sub)); err == nil && st.IsDir() {
			return true
		}
	}
	return false
}

// maildirTree reads dir as a Maildir with Maildir++ folders; ok is false
// when it is not one.
func maildirTree(dir string) (folders []Folder, ok bool, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, false, err
	}
	if isMaildir(dir) {
		folders = append(folders, Folder{Name: "INBOX", Source: &Source{Path: dir, Kind: Maildir}})
	}
	for _, e := range entries {
		n := e.Name()
		if !e.IsDir() || len(n) < 2 || n[0] != '.' || n == ".." || !isMaildir(filepath.Join(dir, n)) {
			continue
		}
		name, err := maildirFolderName(n[1:])
		if err != nil {
			return nil, false, fmt.Errorf("%s: %v", filepath.Join(dir, n), err)
		}
		folders = append(folders, Folder{Name: name, Source: &Source{Path: filepath.Join(dir, n), Kind: Maildir}})
	}
	sortFolders(folders)
	return folders, len(folders) > 0, nil
}

// maildirFolderName turns a Maildir++ folder's name (without its leading
// dot) into a mailbox name: levels separated by dots become levels
// separated by "/", each decoded from modified UTF-7. "INBOX.Sub" (as some
// servers write below INBOX) is Sub.
func maildirFolderName(s string) (string, error) {
	levels := strings.Split(s, ".")
	if len(levels) > 1 && strings.EqualFold(levels[0], "INBOX") {
		levels = levels[1:]
	}
	for i, l := range levels {
		d, err := DecodeMUTF7(l)
		if err != nil {
			return "", err
		}
		levels[i] = d
	}
	name := strings.Join(levels, "/")
	if strings.EqualFold(name, "INBOX") {
		return "INBOX", nil
	}
	return name, nil
}

// mboxTree reads dir as a directory of mbox files.
func mboxTree(dir string) (folders []Folder, skipped []string, err error) {
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		base := d.Name()
		if strings.HasPrefix(base, ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			skipped = append(skipped, p+": a hidden file")
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		if strings.HasSuffix(base, ".msf") {
			skipped = append(skipped, p+": a Thunderbird index")
			return nil
		}
		if err := checkMbox(p); err != nil {
			skipped = append(skipped, p+": not an mbox file")
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		var levels []string
		for _, l := range strings.Split(filepath.ToSlash(rel), "/") {
			l = strings.TrimSuffix(l, ".sbd")
			levels = append(levels, l)
		}
		last := len(levels) - 1
		if strings.HasSuffix(levels[last], ".mbox") && len(levels[last]) > len(".mbox") {
			levels[last] = strings.TrimSuffix(levels[last], ".mbox")
		}
		name := strings.Join(levels, "/")
		if strings.EqualFold(name, "INBOX") {
			name = "INBOX"
		}
		folders = append(folders, Folder{Name: name, Source: &Source{Path: p, Kind: MBox}})
		return nil
	})
	sortFolders(folders)
	return folders, skipped, err
}

// checkMbox says whether the file at path is an mbox: empty, or beginning
// with a From_ line.
func checkMbox(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, 5)
	n, err := io.ReadFull(f, head)
	switch {
	case n == 0 && (err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF)):
		return nil // an empty mailbox
	case bytes.Equal(head[:n], []byte("From ")):
		return nil
	}
	return fmt.Errorf("%s: not an mbox file: it does not begin with a \"From \" line", path)
}

func sortFolders(fs []Folder) {
	sort.SliceStable(fs, func(i, j int) bool {
		if (fs[i].Name == "INBOX") != (fs[j].Name == "INBOX") {
			return fs[i].Name == "INBOX"
		}
		return fs[i].Name < fs[j].Name
	})
}

// Empty reports whether the source holds no message at all (an empty
// mbox file, a Maildir whose cur/ and new/ hold no file).
func (s *Source) Empty() bool {
	if s.Kind == MBox {
		fi, err := os.Stat(s.Path)
		return err == nil && fi.Size() == 0
	}
	for _, sub := range []string{"cur", "new"} {
		entries, _ := os.ReadDir(filepath.Join(s.Path, sub))
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".") && e.Type().IsRegular() {
				return false
			}
		}
	}
	return s.Kind == Maildir
}

// DecodeMUTF7 decodes modified UTF-7 (RFC 3501 5.1.3), the form of
// mailbox names on the IMAP wire and in Maildir++ folder names. Plain
// UTF-8 passes through.
func DecodeMUTF7(s string) (string, error) {
	d, err := mutf7.Decode(s)
	if err != nil {
		return "", fmt.Errorf("%q: %w", s, err)
	}
	return d, nil
}
