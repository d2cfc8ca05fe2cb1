package runbooks

import "time"

// LongestChain returns the length and the ids of the longest chain of steps
// within one layer (same-layer needs only; the layer must be acyclic).
func LongestChain(steps []Step, cost func(Step) time.Duration) (time.Duration, []string) {
	return longestInLayer(steps, cost)
}
