// Package pgtest starts throw-away PostgreSQL clusters for tests: initdb in
// a temporary directory, the server on a free port of 127.0.0.1 (and a unix
// socket in the same directory), stopped when the test binary is done with
// it. A test binary shares one cluster through Shared and TestMain; each
// store gets a database of its own.
//
// When PostgreSQL is not installed (the Debian package postgresql puts its
// programs in /usr/lib/postgresql/VERSION/bin), the tests that need it skip
// with a printed reason. As root the server runs as the user nobody: initdb
// and postgres refuse to run as root.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Options tune a cluster.
type Options struct {
	// Fsync keeps PostgreSQL's fsync on (benchmarks); off by default, as
	// a throw-away cluster survives no machine crash anyway.
	Fsync bool
}

// Cluster is a running throw-away PostgreSQL server.
type Cluster struct {
	dir  string
	port int
	user string // the database superuser
	cmd  *exec.Cmd
	done chan struct{} // closed when the server process has exited
	err  error         // its exit status, once done
	seq  atomic.Int64
	stop sync.Once
	// How it was started, to start it again (Restart).
	bin, data, fsync string
	cred             *syscall.Credential
}

// BinDir finds the directory of PostgreSQL's server programs (initdb,
// postgres), the newest version first, or says why there is none.
func BinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin; apt-get install postgresql)")
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Start creates a cluster in a new temporary directory and starts it.
func Start(o Options) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	removeStale()
	dir, err := os.MkdirTemp("", "pgtest")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, user: "yubin", done: make(chan struct{})}
	cred, err := serverUser(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", c.user, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	fsync := "off"
	if o.Fsync {
		fsync = "on"
	}
	for attempt := 0; ; attempt++ {
		c.port, err = freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		c.bin, c.data, c.cred, c.fsync = bin, data, cred, fsync
		err = c.startServer(bin, data, cred, fsync)
		if err == nil || attempt == 2 {
			break
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

// removeStale removes the directories of clusters whose test binary was
// killed (its server died with it, the directory stayed): those older than
// ten minutes without a live postmaster.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "pgtest*"))
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < 10*time.Minute {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid")); err == nil {
			pid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
			if pid > 0 && syscall.Kill(pid, 0) != syscall.ESRCH {
				continue // running
			}
		}
		os.RemoveAll(d)
	}
}

// serverUser returns the credentials to run PostgreSQL with: none (the
// current user) unless that is root, then nobody's, with dir made theirs.
func serverUser(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL needs another user to run as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startServer runs postgres in the foreground as a child that dies with
// the test binary, and waits until it accepts connections.
func (c *Cluster) startServer(bin, data string, cred *syscall.Credential, fsync string) error {
	logPath := filepath.Join(c.dir, "postgres.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	if cred != nil {
		os.Chown(logPath, int(cred.Uid), int(cred.Gid))
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-p", strconv.Itoa(c.port), "-k", c.dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync="+fsync, "-c", "full_page_writes="+fsync,
		"-c", "max_connections=300", "-c", "shared_buffers=64MB",
		"-c", "log_min_messages=warning", "-c", "log_min_error_statement=panic")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { c.err = cmd.Wait(); close(done) }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			c.cmd, c.done = cmd, done
			return nil
		}
		select {
		case <-done:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres exited (%v) before accepting connections:\n%s", c.err, tail(log))
		case <-ctx.Done():
			cmd.Process.Kill()
			<-done
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres did not accept connections within a minute: %v\n%s", err, tail(log))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// URL is the connection URL of database db over TCP.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", c.user, c.port, db)
}

// Port is the TCP port the server listens on, on 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// CreateDatabase creates a new empty database and returns its URL; the
// template, when not "", is copied (it must have no connections).
func (c *Cluster) CreateDatabase(ctx context.Context, template string) (name, url string, err error) {
	name = fmt.Sprintf("t%d_%d", os.Getpid(), c.seq.Add(1))
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return "", "", err
	}
	defer conn.Close(ctx)
	q := "CREATE DATABASE " + name
	if template != "" {
		q += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if _, err := conn.Exec(ctx, q); err != nil {
		return "", "", fmt.Errorf("%s: %w", q, err)
	}
	return name, c.URL(name), nil
}

// DropDatabase drops a database, ending its connections.
func (c *Cluster) DropDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}

// Stop stops the server (fast shutdown) and removes its directory.
func (c *Cluster) Stop() error {
	var err error
	c.stop.Do(func() {
		if c.cmd != nil {
			c.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-c.done:
			case <-time.After(30 * time.Second):
				c.cmd.Process.Kill()
				<-c.done
			}
		}
		err = os.RemoveAll(c.dir)
	})
	return err
}

// Kill stops the server at once (SIGKILL of the postmaster's process
// group), as a crash would: the database going away.
func (c *Cluster) Kill() {
	if c.cmd != nil {
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
	}
}

// Restart starts the server again after Kill, on the same port and data.
func (c *Cluster) Restart() error {
	return c.startServer(c.bin, c.data, c.cred, c.fsync)
}

// Shared is a test binary's one cluster, started by Main, with one
// database in which each store gets a schema of its own (creating a
// database takes half a second, a schema a millisecond).
type Shared struct {
	c      *Cluster
	db     string // the database of the schemas
	reason string // why there is no cluster
}

// Main starts the cluster, runs the tests and stops it: call it from
// TestMain as os.Exit(shared.Main(m)). When PostgreSQL cannot start the
// tests still run, and those that need it skip with the reason.
func (s *Shared) Main(m *testing.M) int {
	c, err := Start(Options{})
	if err != nil {
		s.reason = err.Error()
	} else {
		defer c.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		s.db, _, err = c.CreateDatabase(ctx, "")
		cancel()
		if err != nil {
			s.reason = err.Error()
		} else {
			s.c = c
		}
	}
	return m.Run()
}

// Cluster returns the shared cluster, or skips t saying why there is none.
func (s *Shared) Cluster(t testing.TB) *Cluster {
	t.Helper()
	if s.c == nil {
		reason := s.reason
		if reason == "" {
			reason = "pgtest.Shared.Main was not called from TestMain"
		}
		t.Skip("SKIP: " + strings.TrimSpace(reason))
	}
	return s.c
}

// Database creates a fresh database (a copy of template when not "") on
// the shared cluster, dropped when t ends, and returns its URL; it skips
// t when there is no cluster.
func (s *Shared) Database(t testing.TB, template string) string {
	t.Helper()
	c := s.Cluster(t)
	name, url, err := c.CreateDatabase(t.Context(), template)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.DropDatabase(ctx, name); err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
	})
	return url
}

// NewSchema creates a fresh schema in the shared database, kept until the
// cluster stops, and returns its name and the URL of the database with
// search_path set to it: what a store opened with the URL creates goes
// into the schema. It skips t when there is no cluster.
func (s *Shared) NewSchema(t testing.TB) (name, url string) {
	t.Helper()
	c := s.Cluster(t)
	name = fmt.Sprintf("s%d", c.seq.Add(1))
	conn, err := pgx.Connect(t.Context(), c.URL(s.db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), "CREATE SCHEMA "+name); err != nil {
		t.Fatal(err)
	}
	return name, c.URL(s.db) + "&search_path=" + name
}

// Schema is NewSchema dropped when t ends.
func (s *Shared) Schema(t testing.TB) string {
	t.Helper()
	c := s.Cluster(t)
	name, url := s.NewSchema(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, c.URL(s.db))
		if err != nil {
			t.Errorf("dropping schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", name, err)
		}
	})
	return url
}
