package worker

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/lifeboat-dr/lifeboat/activities/secrets"
	"github.com/lifeboat-dr/lifeboat/runbooks/proof"
	"github.com/lifeboat-dr/lifeboat/runbooks/record"
	"github.com/lifeboat-dr/lifeboat/starter"
)

// SignaturesConfig says who can prove what. The worker records the allowed
// signers in every run at resolve and verifies operators' signatures
// against them; the CLI signs with KeyFile, KeyDir/NAME, or the ssh-agent.
//
//	signatures:
//	  allowedSigners: /etc/lifeboat/allowed_signers  # LIFEBOAT_ALLOWED_SIGNERS (OpenSSH format, as git uses)
//	  required: true                                 # LIFEBOAT_SIGNATURES_REQUIRED=true: refuse every unsigned action
//	  keyFile: ~/.ssh/id_ed25519                     # CLI: LIFEBOAT_SIGNING_KEY (default: the ssh-agent)
type SignaturesConfig struct {
	// AllowedSigners is an OpenSSH allowed_signers file: principal → key.
	AllowedSigners string `yaml:"allowedSigners"`
	// Required refuses every unsigned start, approve, reject, ack, retry,
	// skip and abort (otherwise they are recorded as unproven).
	Required bool `yaml:"required"`
	// KeyFile is the CLI's private key (unencrypted OpenSSH or PEM).
	KeyFile string `yaml:"keyFile"`
	// KeyDir holds one private key per person, named after them: what
	// `lifeboat dev` generates for the demo's people. Never in production.
	KeyDir string `yaml:"keyDir"`
	// WorkerKey is the worker's own private key: it signs every evidence
	// record (LIFEBOAT_WORKER_KEY). List its public key in allowedSigners as
	// `lifeboat-worker namespaces="lifeboat-evidence" ssh-ed25519 …` so
	// lifeboat evidence verify (and ssh-keygen) trust it.
	WorkerKey string `yaml:"workerKey"`
}

// EvidenceKey reads the worker's key (nil when none is configured).
func (s SignaturesConfig) EvidenceKey() (ssh.Signer, error) {
	if s.WorkerKey == "" {
		return nil, nil
	}
	return starter.ReadKey(s.WorkerKey)
}

// WorkerKeys are the allowed signers' worker keys: what evidence verify trusts.
func (s SignaturesConfig) WorkerKeys() ([]proof.AllowedSigner, error) {
	if s.AllowedSigners == "" {
		return nil, fmt.Errorf("no allowed signers to check the worker's signature against: give --signers FILE, or set signatures.allowedSigners (LIFEBOAT_ALLOWED_SIGNERS)")
	}
	return s.read(record.EvidenceNamespace)
}

// Signers returns a reader of the allowed signers (read afresh for every
// run, so a key added or revoked counts at once), or nil when none are
// configured.
func (s SignaturesConfig) Signers() func() ([]proof.AllowedSigner, error) {
	if s.AllowedSigners == "" {
		return nil
	}
	return func() ([]proof.AllowedSigner, error) { return s.read(proof.SignatureNamespace) }
}

// read parses the allowed_signers lines that allow namespace.
func (s SignaturesConfig) read(namespace string) ([]proof.AllowedSigner, error) {
	b, err := os.ReadFile(s.AllowedSigners)
	if err != nil {
		return nil, fmt.Errorf("signatures.allowedSigners: %w", err)
	}
	signers, err := proof.ParseAllowedSignersFor(string(b), namespace)
	if err != nil {
		return nil, fmt.Errorf("signatures.allowedSigners %s: %w", s.AllowedSigners, err)
	}
	return signers, nil
}

// check names what is wrong with the worker's signature settings.
func (s SignaturesConfig) check() []string {
	if _, err := s.EvidenceKey(); err != nil {
		return []string{"signatures.workerKey: " + err.Error()}
	}
	if s.Required && s.AllowedSigners == "" {
		return []string{"signatures.required is true but signatures.allowedSigners is empty: nobody could prove anything; name the allowed_signers file (LIFEBOAT_ALLOWED_SIGNERS)"}
	}
	if read := s.Signers(); read != nil {
		if _, err := read(); err != nil {
			return []string{err.Error()}
		}
	}
	return nil
}

// SecretStore is the store actions read secret references through: the
// allowed variables (and the notify webhook's), the allowed directories,
// and the worker's own secrets to scrub from every error (the Cloudflare
// token, the codec keys).
func (c Config) SecretStore() *secrets.Store {
	env := append([]string{c.Notify.webhookEnv()}, c.Secrets.Env...)
	return &secrets.Store{Getenv: os.Getenv, Env: env, Dirs: c.Secrets.Dirs, Extra: func() []string {
		var out []string
		if tok := c.Cloudflare.Token(os.Getenv); tok != nil {
			if v, err := tok(); err == nil {
				out = append(out, v)
			}
		}
		keys := ""
		if c.Codec.KeyEnv != "" {
			keys = os.Getenv(c.Codec.KeyEnv)
		}
		if c.Codec.KeyFile != "" {
			if b, err := os.ReadFile(c.Codec.KeyFile); err == nil {
				keys = string(b)
			}
		}
		for _, line := range strings.Fields(keys) { // ID=BASE64: the key alone, too
			_, key, _ := strings.Cut(line, "=")
			out = append(out, line, key)
		}
		return out
	}}
}
