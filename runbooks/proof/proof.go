package proof

import "fmt"

// Proof is what proves who made a decision: the exact signed statement (a
// Decision's Statement) and the armored SSH signature of it. An auditor
// checks it offline with the record's allowed signers:
//
//	ssh-keygen -Y verify -f allowed_signers -I BY -n lifeboat -s SIG < STATEMENT
type Proof struct {
	Statement string `json:"statement"`
	Signature string `json:"signature"`
}

// Actor names who did something for people to read: "bob (signed)", or
// "alice (unproven, client 42@laptop)" when nothing proves the name.
func Actor(by string, p *Proof, client string) string {
	switch {
	case by == "":
		by = "—"
	case p != nil:
		return by + " (signed)"
	}
	if client != "" {
		return fmt.Sprintf("%s (unproven, client %s)", by, client)
	}
	return by + " (unproven)"
}
