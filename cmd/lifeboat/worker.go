package main

import (
	"context"
	"fmt"
	"github.com/spf13/pflag"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/lifeboat-dr/lifeboat/devserver"
	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/worker"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

func cmdWorker(fs *pflag.FlagSet) runner {
	return func(ctx context.Context, _ []string) error {
		cfg, err := loadConfig(configPath)
		if err != nil {
			return err
		}
		if err := cfg.CheckWorker(); err != nil {
			return err
		}
		return runWorker(ctx, cfg)
	}
}

// runWorker runs a worker until ctx ends.
func runWorker(ctx context.Context, cfg worker.Config) error {
	metrics := worker.NewMetrics()
	defer metrics.Close()
	c, err := worker.Dial(cfg, func(o *client.Options) { o.MetricsHandler = metrics.Handler() })
	if err != nil {
		return err
	}
	defer c.Close()
	health := worker.NewHealth(c, cfg)
	if cfg.MetricsListen != "" {
		stop, err := serveMetrics(cfg.MetricsListen, metrics, health)
		if err != nil {
			return err
		}
		defer stop()
	}
	w := worker.New(c, cfg, worker.Registry(cfg), sdkworker.Options{OnFatalError: health.Fatal})
	if err := w.Start(); err != nil {
		return err
	}
	health.Started()
	fmt.Printf("worker on %s (namespace %s, task queue %s); catalog %s; evidence in %s\n",
		cfg.Temporal.Address, cfg.Temporal.Namespace, cfg.Temporal.TaskQueue, strings.Join(cfg.Catalog, ", "), evidenceLocation(cfg))
	<-ctx.Done()
	w.Stop()
	return nil
}

// serveMetrics serves /metrics, /healthz and /readyz on addr until stop
// is called.
func serveMetrics(addr string, m *worker.Metrics, health *worker.Health) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m)
	mux.Handle("/healthz", health)
	mux.Handle("/readyz", health)
	at, stop, err := serveHTTP(addr, mux)
	if err != nil {
		return nil, fmt.Errorf("metrics on %s: %w (set another host:port in LIFEBOAT_METRICS_ADDR)", addr, err)
	}
	fmt.Printf("metrics on http://%s/metrics, probes on /healthz and /readyz\n", at)
	return stop, nil
}

func cmdDev(fs *pflag.FlagSet) runner {
	catalog := fs.String("catalog", "", "runbook directories separated by ':' (default: the config's, runbooks/examples)")
	port := fs.String("port", "7233", "Temporal frontend port")
	uiPort := fs.String("ui-port", "8233", "Temporal UI port")
	state := fs.String("state", ".lifeboat", "directory for the SQLite database and evidence")
	return func(ctx context.Context, _ []string) error {
		cfg, err := loadConfig(configPath)
		if err != nil {
			return err
		}
		if *catalog != "" {
			cfg.Catalog = filepath.SplitList(*catalog)
		}
		if err := os.MkdirAll(*state, 0o755); err != nil {
			return err
		}
		if os.Getenv("LIFEBOAT_EVIDENCE_DIR") == "" {
			cfg.EvidenceDir = filepath.Join(*state, "evidence")
		}
		cfg.Temporal.Address = "localhost:" + *port
		if cfg.Signatures.AllowedSigners == "" && cfg.Signatures.KeyDir == "" {
			cfg.Signatures.AllowedSigners = filepath.Join(*state, "allowed_signers")
			cfg.Signatures.KeyDir = filepath.Join(*state, "keys")
		}
		if cfg.Signatures.KeyDir != "" {
			if cfg.Signatures.WorkerKey == "" {
				cfg.Signatures.WorkerKey = filepath.Join(cfg.Signatures.KeyDir, starter.WorkerKeyName)
			}
			if err := demoKeys(cfg.Signatures, cfg.Catalog); err != nil {
				return fmt.Errorf("generating the demo's signing keys: %w", err)
			}
			fmt.Printf("demo signing keys for %s in %s (allowed signers: %s); the CLI signs --as NAME with them when LIFEBOAT_KEY_DIR=%s\n",
				strings.Join(demoPeople(cfg.Catalog), ", "), cfg.Signatures.KeyDir, cfg.Signatures.AllowedSigners, cfg.Signatures.KeyDir)
		}
		if err := cfg.CheckWorker(); err != nil {
			return err
		}
		logFile, err := os.Create(filepath.Join(*state, "temporal.log"))
		if err != nil {
			return err
		}
		defer logFile.Close()
		codecEndpoint := ""
		if codec, err := cfg.Codec.Codec(os.Getenv); err != nil {
			return err
		} else if codec != nil { // the UI decrypts through a local codec server
			addr, stop, err := serveCodec("127.0.0.1:0", codec, "http://localhost:"+*uiPort, "")
			if err != nil {
				return err
			}
			defer stop()
			codecEndpoint = "http://" + addr
			fmt.Printf("payloads are encrypted (key %s); the UI decodes them through %s\n", codec.KeyID(), codecEndpoint)
		}
		fmt.Println("starting the Temporal dev server…")
		srv, err := devserver.Start(ctx, devserver.Options{
			HostPort: cfg.Temporal.Address, UIPort: *uiPort, DBFile: filepath.Join(*state, "temporal.db"), Log: logFile, Progress: os.Stdout,
			CodecEndpoint: codecEndpoint,
		})
		if err != nil {
			return err
		}
		defer srv.Stop()
		fmt.Printf("Temporal dev server on %s, UI on %s (log: %s)\n", srv.HostPort, srv.UIURL, logFile.Name())
		if srv.UIURL != "" {
			fmt.Printf("runs waiting for a person (approval, acknowledgement, a paused step): %s\n", listLink(srv.UIURL, cfg.Temporal.Namespace, WaitingForAPerson))
			fmt.Printf("runs refused at their start (nothing ran; each says why): %s\n", listLink(srv.UIURL, cfg.Temporal.Namespace, workflows.RefusedStarts))
		}
		return runWorker(ctx, cfg)
	}
}

// evidenceLocation is where the worker stores evidence, for its banner.
func evidenceLocation(cfg worker.Config) string {
	if cfg.Evidence.URL != "" {
		return fmt.Sprintf("%s (locked %d days)", cfg.Evidence.URL, cfg.Evidence.RetentionDays)
	}
	return cfg.EvidenceDir
}
