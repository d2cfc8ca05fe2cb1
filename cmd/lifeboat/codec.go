package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/spf13/pflag"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/lifeboat-dr/lifeboat/worker"
)

// cmdCodecKey prints a fresh key line for the payload codec.
func cmdCodecKey(fs *pflag.FlagSet) runner {
	return func(_ context.Context, pos []string) error {
		line, err := worker.NewKeyLine(pos[0])
		if err != nil {
			return err
		}
		fmt.Println(line)
		return nil
	}
}

// cmdCodecServer serves /encode and /decode for the Temporal UI with the
// configured keys.
func cmdCodecServer(fs *pflag.FlagSet) runner {
	listen := fs.String("listen", "127.0.0.1:8234", "host:port to serve on")
	origin := fs.String("ui-origin", "http://localhost:8233", "the Temporal UI's origin, the only one allowed to call (CORS)")
	tokenEnv := fs.String("token-env", "", "environment variable with a token callers must send as Authorization: Bearer")
	return func(ctx context.Context, _ []string) error {
		cfg, err := loadConfig(configPath)
		if err != nil {
			return err
		}
		codec, err := cfg.Codec.Codec(os.Getenv)
		if err != nil {
			return err
		}
		if codec == nil {
			return errors.New("no codec keys configured: set LIFEBOAT_CODEC_KEY_FILE (or codec.keyFile in the config) to a file of ID=BASE64 lines; lifeboat codec-key ID makes one")
		}
		token := ""
		if *tokenEnv != "" {
			if token = os.Getenv(*tokenEnv); token == "" {
				return fmt.Errorf("--token-env %s: the variable is empty", *tokenEnv)
			}
		}
		addr, stop, err := serveCodec(*listen, codec, *origin, token)
		if err != nil {
			return err
		}
		defer stop()
		fmt.Printf("codec server on http://%s (key %s); for the UI: temporal server start-dev --ui-codec-endpoint http://%s\n", addr, codec.KeyID(), addr)
		<-ctx.Done()
		return nil
	}
}

// serveHTTP serves handler on listen (host:port; port 0 picks one) until
// stop is called, and returns the address it listens on.
func serveHTTP(listen string, handler http.Handler) (addr string, stop func(), err error) {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return l.Addr().String(), func() { _ = srv.Close() }, nil
}

// serveCodec serves the codec server on listen until stop is called.
func serveCodec(listen string, codec *worker.AESCodec, origin, token string) (addr string, stop func(), err error) {
	addr, stop, err = serveHTTP(listen, worker.CodecServer(codec, origin, token))
	if err != nil {
		return "", nil, fmt.Errorf("codec server on %s: %w (choose another with --listen)", listen, err)
	}
	return addr, stop, nil
}
