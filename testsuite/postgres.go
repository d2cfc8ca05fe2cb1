package testsuite

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lifeboat-dr/lifeboat/activities/postgres"
)

// PostgresBin is where Debian's postgresql-15 (installed by `make tools`)
// puts PostgreSQL's server and tools.
const PostgresBin = "/usr/lib/postgresql/15/bin"

// PlantedPGPassword is the case database's password: a secret the tests
// search for everywhere and must find nowhere.
const PlantedPGPassword = "planted-pg-password-5d1e0b93"

// pgUser is the OS user PostgreSQL runs as when the tests run as root
// (PostgreSQL refuses root); Debian's package creates it.
const pgUser = "postgres"

// CaseDB is the case database on the rig: a primary (in the primary
// region) taking the business's writes — a new case every half second —
// and a streaming standby made with `pg_basebackup -R` (in the DR region).
// Both are real PostgreSQL 15 servers on loopback.
type CaseDB struct {
	// pgRoot holds the data directories (primary, standby, drill clones).
	pgRoot
	Primary, Standby *PGServer
	// DrillClonePort is the port a drill's clone (case-db-drill) listens on.
	DrillClonePort int

	stopWriter context.CancelFunc
	writerDone chan struct{}
}

// PGServer is one PostgreSQL server of the rig.
type PGServer struct {
	Name     string
	DataDir  string
	Port     int
	proc     *proc
	cred     *syscall.Credential
	password string // the postgres superuser's
}

// DSN is the server's connection string to the cases database (it holds
// the password: PlantedPGPassword for the case database).
func (p *PGServer) DSN() string {
	return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/cases?sslmode=disable", p.password, p.Port)
}

// Connect opens a connection to the server.
func (p *PGServer) Connect(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return pgx.Connect(cctx, p.DSN())
}

// StartCaseDB initialises the primary, seeds the cases table, clones the
// standby from it and starts the writer.
func StartCaseDB(ctx context.Context, progress io.Writer) (db *CaseDB, err error) {
	db = &CaseDB{}
	defer func() {
		if err != nil {
			db.Stop()
		}
	}()
	if db.pgRoot, err = newPGRoot(); err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	db.DrillClonePort = ports[2]
	started := time.Now()
	// Data checksums: pg_rewind needs them (or wal_log_hints) to rewind.
	if db.Primary, err = db.initdb(ctx, "case-db-primary", "primary", ports[0], PlantedPGPassword, "--data-checksums"); err != nil {
		return nil, err
	}
	// wal_sender_timeout 4s: an idle primary tells its standby where its
	// WAL ends every 2s (keepalives at half the timeout), so a caught-up
	// standby knows it is caught up within 2s, not 30s.
	// Copies of this file (pg_basebackup, pg_rewind) keep it.
	conf := "\nwal_level = replica\nmax_wal_senders = 10\nhot_standby = on\nwal_keep_size = '256MB'\nwal_sender_timeout = '4s'\n"
	if err := appendFile(filepath.Join(db.Primary.DataDir, "postgresql.conf"), conf); err != nil {
		return nil, err
	}
	if err := db.Primary.start(ctx); err != nil {
		return nil, err
	}
	if err := db.seed(ctx); err != nil {
		return nil, err
	}
	db.Standby = &PGServer{Name: "case-db-dr", DataDir: filepath.Join(db.Root, "standby"), Port: ports[1], cred: db.cred, password: PlantedPGPassword}
	if out, err := db.toolEnv(ctx, []string{"PGPASSWORD=" + PlantedPGPassword}, "pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(db.Primary.Port),
		"-U", "postgres", "-D", db.Standby.DataDir, "-R", "-X", "stream", "-c", "fast", "--no-password"); err != nil {
		return nil, fmt.Errorf("pg_basebackup of the standby: %v: %s", err, out)
	}
	if err := db.Standby.start(ctx); err != nil {
		return nil, err
	}
	db.startWriter()
	fmt.Fprintf(progress, "rig: PostgreSQL primary :%d and its streaming standby :%d are up (%s)\n", db.Primary.Port, db.Standby.Port, time.Since(started).Round(100*time.Millisecond))
	return db, nil
}

// seed creates the cases table with 100 cases opened over the last hour.
func (db *CaseDB) seed(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable", PlantedPGPassword, db.Primary.Port))
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE cases"); err != nil {
		conn.Close(ctx)
		return err
	}
	conn.Close(ctx)
	c, err := db.Primary.Connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, `CREATE TABLE cases (id bigserial PRIMARY KEY, title text NOT NULL, opened_at timestamptz NOT NULL DEFAULT now());
INSERT INTO cases (title, opened_at) SELECT 'case ' || g, now() - (100 - g) * interval '36 seconds' FROM generate_series(1, 100) g`)
	return err
}

// startWriter plays the business: a new case on the primary every half
// second, until the primary is lost.
func (db *CaseDB) startWriter() {
	ctx, cancel := context.WithCancel(context.Background())
	db.stopWriter, db.writerDone = cancel, make(chan struct{})
	go func() {
		defer close(db.writerDone)
		var conn *pgx.Conn
		for ctx.Err() == nil {
			if conn == nil {
				conn, _ = db.Primary.Connect(ctx)
			}
			if conn != nil {
				if _, err := conn.Exec(ctx, "INSERT INTO cases (title) VALUES ('case opened at ' || now())"); err != nil {
					conn.Close(context.Background())
					conn = nil
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
}

// PauseWriter stops the business's writes (an idle primary); ResumeWriter
// starts them again.
func (db *CaseDB) PauseWriter() {
	db.stopWriter()
	<-db.writerDone
}

// ResumeWriter starts the business's writes again on the primary.
func (db *CaseDB) ResumeWriter() { db.startWriter() }

// WriteSecrets writes each server's connection string into dir as
// NAME.dsn (case-db-primary.dsn, case-db-dr.dsn), as a secret manager's
// mounted files would be.
func (db *CaseDB) WriteSecrets(dir string) error {
	for _, s := range []*PGServer{db.Primary, db.Standby} {
		if err := os.WriteFile(filepath.Join(dir, s.Name+".dsn"), []byte(s.DSN()+"\n"), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// LosePrimary kills the primary's processes with SIGKILL, as the region's loss does.
func (db *CaseDB) LosePrimary() {
	db.PauseWriter()
	db.Primary.proc.kill()
}

// BringBackPrimary starts the old primary again on its data: it comes back
// as a primary, beside the promoted one, until a failback rewinds it.
func (db *CaseDB) BringBackPrimary(ctx context.Context) error { return db.Primary.start(ctx) }

// Instances are the data directories a worker on this host may work on
// (its postgres config): the primary, the standby and the drill's clone.
func (db *CaseDB) Instances() postgres.Local {
	l := postgres.Local{Bin: PostgresBin, Instances: map[string]postgres.Instance{
		db.Primary.Name: {DataDir: db.Primary.DataDir, Port: db.Primary.Port},
		db.Standby.Name: {DataDir: db.Standby.DataDir, Port: db.Standby.Port},
		"case-db-drill": {DataDir: filepath.Join(db.Root, "drill-clone"), Port: db.DrillClonePort, DrillClone: true},
	}}
	if db.cred != nil {
		l.RunAs = pgUser
	}
	return l
}

// Stop stops every server of the rig, those the actions started with
// pg_ctl (a rewound primary, a drill's clone) included, and removes the data.
func (db *CaseDB) Stop() {
	if db.stopWriter != nil {
		db.PauseWriter()
	}
	for _, s := range []*PGServer{db.Primary, db.Standby} {
		if s != nil {
			s.proc.kill()
		}
	}
	db.remove()
}

// start runs the server as a rig process (SIGKILL-able with its children)
// and waits until it accepts connections.
func (p *PGServer) start(ctx context.Context) error {
	var err error
	p.proc, err = startProcAs("postgres "+p.Name, filepath.Join(PostgresBin, "postgres"), filepath.Join(filepath.Dir(p.DataDir), p.Name+".log"), p.cred, nil,
		"-D", p.DataDir, "-p", strconv.Itoa(p.Port))
	if err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if err, dead := p.proc.exited(); dead {
			return fmt.Errorf("postgres %s exited (%v); its log ends:\n%s", p.Name, err, p.proc.lastLog())
		}
		if c, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2", p.password, p.Port)); err == nil {
			c.Close(ctx)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres %s did not accept connections within a minute; its log ends:\n%s", p.Name, p.proc.lastLog())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(text)
	return err
}
