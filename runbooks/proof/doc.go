// Package proof is who decided what, proven: the statement an operator's
// decision signs (Decision), the SSH signature that proves it (Proof,
// SignDecision, VerifyDecision: namespace "lifeboat", the sender's key in
// an allowed_signers file), and how a name is shown with its proof in the
// evidence (Actor). It imports nothing of lifeboat's: the runbook format,
// the workflow, the CLI and the evidence verifier all check signatures
// here and nowhere else.
package proof
