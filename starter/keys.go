package starter

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
)

// ReadKey reads an unencrypted private key (OpenSSH or PEM); a
// passphrase-protected one is refused with the way out (the ssh-agent).
func ReadKey(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	key, err := ssh.ParsePrivateKey(b)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return nil, fmt.Errorf("signing key %s is passphrase-protected: load it into ssh-agent (ssh-add %s) and unset LIFEBOAT_SIGNING_KEY", path, path)
	}
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	return key, nil
}

// KeyDir finds NAME's key as the file keyDir/NAME (nil when there is none).
func KeyDir(keyDir string) KeyFinder {
	return func(by string) (ssh.Signer, error) {
		path := filepath.Join(keyDir, filepath.Base(by))
		if _, err := os.Stat(path); err != nil {
			return nil, nil
		}
		return ReadKey(path)
	}
}

// WorkerKeyName is the file name of the worker's key in a demo key directory.
const WorkerKeyName = "lifeboat-worker"

// WriteDemoKeys gives each person an ed25519 key in keyDir (made once,
// then kept), and the worker one (keyDir/lifeboat-worker, for evidence
// only), and writes the allowed_signers file that proves them. It is for
// demos and tests (`lifeboat dev`): real people keep their own keys.
func WriteDemoKeys(keyDir, allowedSigners string, people []string) error {
	if err := os.MkdirAll(keyDir, 0o700); err != nil {
		return err
	}
	lines := []string{"# lifeboat dev: the demo's people (keys in " + keyDir + ")"}
	for _, name := range append(people, WorkerKeyName) {
		path := filepath.Join(keyDir, name)
		if _, err := os.Stat(path); err != nil {
			if err := writeKey(path, name); err != nil {
				return err
			}
		}
		key, err := ReadKey(path)
		if err != nil {
			return err
		}
		namespace := proof.SignatureNamespace
		if name == WorkerKeyName {
			namespace = record.EvidenceNamespace // the worker signs records, never decisions
		}
		lines = append(lines, fmt.Sprintf(`%s namespaces="%s" %s`, name, namespace,
			strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key.PublicKey())))))
	}
	return os.WriteFile(allowedSigners, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

func writeKey(path, name string) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	block, err := ssh.MarshalPrivateKey(priv, name+"@lifeboat-dev")
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(block), 0o600)
}
