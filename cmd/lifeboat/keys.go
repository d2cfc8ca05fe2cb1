package main

import (
	"fmt"
	"net"
	"os"
	"slices"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/worker"
)

// keyFinder finds the key that signs for --as NAME, in this order: the
// configured key file (LIFEBOAT_SIGNING_KEY), KeyDir/NAME (the demo's
// generated keys), then the ssh-agent (SSH_AUTH_SOCK): the agent key the
// allowed signers give NAME, or its only key. No key: unsigned.
// devKeyDir is where lifeboat dev, run with its default --state, keeps
// the demo approvers' keys.
const devKeyDir = ".lifeboat/keys"

func keyFinder(cfg worker.SignaturesConfig) starter.KeyFinder {
	if cfg.KeyDir == "" && cfg.KeyFile == "" {
		// Beside a lifeboat dev (its default state directory), sign with the
		// keys it made: its worker counts only signed approvals.
		if st, err := os.Stat(devKeyDir); err == nil && st.IsDir() {
			cfg.KeyDir = devKeyDir
		}
	}
	return func(by string) (ssh.Signer, error) {
		if cfg.KeyFile != "" {
			return starter.ReadKey(cfg.KeyFile)
		}
		if cfg.KeyDir != "" {
			if key, err := starter.KeyDir(cfg.KeyDir)(by); key != nil || err != nil {
				return key, err
			}
		}
		sock := os.Getenv("SSH_AUTH_SOCK")
		if sock == "" {
			return nil, nil
		}
		conn, err := net.Dial("unix", sock)
		if err != nil {
			return nil, fmt.Errorf("ssh-agent (SSH_AUTH_SOCK=%s): %w", sock, err)
		}
		// The connection stays open for the signature; the process is short-lived.
		keys, err := agent.NewClient(conn).Signers()
		if err != nil || len(keys) == 0 {
			return nil, err
		}
		if read := cfg.Signers(); read != nil {
			signers, err := read()
			if err != nil {
				return nil, err
			}
			for _, k := range keys {
				for _, s := range signers {
					if s.Is(k.PublicKey()) && slices.Contains(s.Principals, by) {
						return k, nil
					}
				}
			}
			return nil, fmt.Errorf("none of the ssh-agent's %d keys is %s's in %s: add %s's key to the agent, or set LIFEBOAT_SIGNING_KEY", len(keys), by, cfg.AllowedSigners, by)
		}
		if len(keys) > 1 {
			return nil, fmt.Errorf("the ssh-agent holds %d keys: set signatures.allowedSigners (LIFEBOAT_ALLOWED_SIGNERS) so lifeboat can tell which is %s's, or LIFEBOAT_SIGNING_KEY", len(keys), by)
		}
		return keys[0], nil
	}
}
