package workflows

import (
	"crypto/sha256"
	"encoding/hex"

	"go.temporal.io/sdk/workflow"
)

// A claim is a running ClaimWorkflow whose workflow id is derived from a key
// (a schedule name, "defaults installed for target X"). Starting it with the
// id-conflict policy FAIL is the cluster-wide, atomic "take this key unless
// someone holds it": no API replica keeps a lock of its own. The claim holds
// until it is released by signal.
const (
	// ClaimWorkflowName is the workflow type of a claim.
	ClaimWorkflowName = "ThemisClaim"
	// ReleaseClaimSignal ends a claim (its key becomes free again).
	ReleaseClaimSignal = "release"
)

// Claim kinds.
const (
	// ClaimScheduleName: a schedule name, owned by a schedule id.
	ClaimScheduleName = "schedule-name"
	// ClaimDefaultsInstalled: the default schedules of a target were
	// installed in this namespace once; an operator's delete is respected.
	ClaimDefaultsInstalled = "defaults-installed"
)

// ClaimInput names what is claimed and by whom.
type ClaimInput struct {
	Kind  string `json:"kind"`
	Key   string `json:"key"`
	Owner string `json:"owner"`
}

// ClaimID is the workflow id of the claim of key: a hash, so any key (a
// name with spaces or quotes) makes a valid, fixed-length id.
func ClaimID(kind, key string) string {
	sum := sha256.Sum256([]byte(kind + "\x00" + key))
	return "themis-claim-" + kind + "-" + hex.EncodeToString(sum[:16])
}

// ClaimWorkflow holds a claim until it receives ReleaseClaimSignal.
func ClaimWorkflow(ctx workflow.Context, in ClaimInput) error {
	workflow.SetCurrentDetails(ctx, "Holds **"+in.Kind+"** `"+in.Key+"` for `"+in.Owner+"` until released")
	workflow.GetSignalChannel(ctx, ReleaseClaimSignal).Receive(ctx, nil)
	return nil
}
