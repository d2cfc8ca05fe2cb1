package evidence

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/lifeboat-dr/lifeboat/runbooks/record"
)

// The chain of a runbook's final records lives beside them:
//
//	.chain/RUNBOOK/0000000001.json  position 1: the first final record
//	.chain/RUNBOOK/0000000002.json  position 2, …
//	.chain/RUNBOOK/head.json        a copy of the newest position
//
// A position is taken with Store.Create, which only one writer wins, so
// any number of workers on one store append one line and never fork it:
// the loser re-seals its record after the winner's and tries the next
// position. Each position is a statement the worker signs (which record,
// its hash, the record before it), so a position cannot be forged without
// a worker key. The head is a hint for finding the tip quickly, and a
// check against a careless deletion; it is not proof: two workers may
// write it in either order, so it can lag behind the newest position.
// What proves that nothing was cut off the end is outside the chain: a
// bucket's versions (VerifyStore names every object a delete marker
// hides — Object Lock keeps the version under it) and Temporal's list of
// finished runs (CrossCheck), which is the only witness for a plain
// directory.
const chainDir = ".chain/"

// chainKind marks a chain statement, so it can never pass for a record.
const chainKind = "lifeboat-evidence-chain"

// legacyChainFile is where records sealed before positions existed kept
// each runbook's newest record: a runbook's first position chains to it.
const legacyChainFile = ".chain.json"

// position is one place in a runbook's chain: what a worker signs.
type position struct {
	Kind     string `json:"kind"`
	Runbook  string `json:"runbook"`
	Seq      int    `json:"seq"`
	File     string `json:"file"`
	Hash     string `json:"hash"`
	Previous string `json:"previous,omitempty"`
}

// signedPosition is a position object: the statement (the position as
// compact JSON) and the worker's signature of it.
type signedPosition struct {
	Statement string `json:"statement"`
	Signer    string `json:"signer,omitempty"`
	Signature string `json:"signature,omitempty"`
}

type link struct {
	File string `json:"file"`
	Hash string `json:"hash"`
}

// chainPrefix is where a runbook's chain lives ("_" for a record that
// names no runbook).
func chainPrefix(runbook string) string {
	if runbook == "" {
		runbook = "_"
	}
	return chainDir + safeName(runbook) + "/"
}

func positionName(runbook string, seq int) string {
	return fmt.Sprintf("%s%010d.json", chainPrefix(runbook), seq)
}

func headName(runbook string) string { return chainPrefix(runbook) + "head.json" }

// positionFile is a position's file name: ten digits.
var positionFile = regexp.MustCompile(`^[0-9]{10}\.json$`)

// seqOf is the position a position object's name holds (0: not one —
// the head, or anything else someone put there).
func seqOf(name string) int {
	base := path.Base(name)
	if !positionFile.MatchString(base) {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSuffix(base, ".json"))
	return n
}

// sign makes the position object of p, signed with key (unsigned without).
func sign(p position, key ssh.Signer) ([]byte, error) {
	p.Kind = chainKind
	stmt, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	obj := signedPosition{Statement: string(stmt)}
	if key != nil {
		sig, err := sshsig.SignWithRand(bytes.NewReader(stmt), rand.Reader, key, sshsig.HashSHA512, record.EvidenceNamespace)
		if err != nil {
			return nil, err
		}
		obj.Signer, obj.Signature = ssh.FingerprintSHA256(key.PublicKey()), string(sshsig.Armor(sig))
	}
	b, err := json.MarshalIndent(obj, "", "  ")
	return append(b, '\n'), err
}

// parsePosition reads a position object (its signature is checked by the
// verifier, not here).
func parsePosition(b []byte) (signedPosition, position, error) {
	var obj signedPosition
	var p position
	if err := json.Unmarshal(b, &obj); err != nil {
		return obj, p, fmt.Errorf("not a chain position: %w", err)
	}
	if err := json.Unmarshal([]byte(obj.Statement), &p); err != nil || p.Kind != chainKind {
		return obj, p, fmt.Errorf("not a chain position statement")
	}
	return obj, p, nil
}

// tip is the newest position of a runbook's chain (Seq 0 when it has
// none: then the link is the legacy chain file's head, if any).
func tip(ctx context.Context, st Store, runbook string) (position, error) {
	after := ""
	if b, err := st.Get(ctx, headName(runbook)); err == nil {
		if _, h, err := parsePosition(b); err == nil && h.Seq > 1 {
			after = positionName(runbook, h.Seq-1) // the head is a hint: list from it
		}
	}
	for {
		names, err := st.List(ctx, chainPrefix(runbook), after)
		if err != nil {
			return position{}, err
		}
		newest := ""
		for _, n := range names {
			if seqOf(n) > 0 {
				newest = n
			}
		}
		if newest == "" && after != "" {
			after = "" // positions after the head are gone: list them all
			continue
		}
		if newest == "" {
			return legacyTip(ctx, st, runbook), nil
		}
		b, err := st.Get(ctx, newest)
		if err != nil {
			return position{}, err
		}
		_, p, err := parsePosition(b)
		if err != nil {
			return position{}, fmt.Errorf("%s: %w", st.Location(newest), err)
		}
		if p.Seq != seqOf(newest) || p.Runbook != runbook {
			return position{}, fmt.Errorf("%s is not position %d of runbook %s's chain (its statement says position %d of %q): written into the chain by hand; lifeboat evidence verify names it, and no record can be chained after it until it is removed",
				st.Location(newest), seqOf(newest), runbook, p.Seq, p.Runbook)
		}
		return p, nil
	}
}

func legacyTip(ctx context.Context, st Store, runbook string) position {
	heads := legacyHeads(ctx, st)
	h, ok := heads[runbook]
	if !ok {
		return position{}
	}
	return position{Runbook: runbook, File: h.File, Hash: h.Hash}
}

func legacyHeads(ctx context.Context, st Store) map[string]link {
	heads := map[string]link{}
	if b, err := st.Get(ctx, legacyChainFile); err == nil {
		_ = json.Unmarshal(b, &heads)
	}
	return heads
}

// advanceHead copies the position object at seq to the head unless the
// head is already there or further (another worker's newer append).
func advanceHead(ctx context.Context, st Store, runbook string, seq int, obj []byte) error {
	if b, err := st.Get(ctx, headName(runbook)); err == nil {
		if _, h, err := parsePosition(b); err == nil && h.Seq >= seq {
			return nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return st.Put(ctx, headName(runbook), obj, false)
}
