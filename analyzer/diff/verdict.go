package diff

// Verdicts of a production/target pair.
const (
	VerdictMatch     = "match"      // no difference
	VerdictNoiseOnly = "noise_only" // differences, all of them noise
	VerdictMismatch  = "mismatch"   // at least one difference that is not noise
)

// Judgement is the verdict on one target's Result, with its differences
// sorted into noise and regressions. Each list keeps the order of
// Result.Keys.
type Judgement struct {
	Verdict string `json:"verdict"` // VerdictMatch, VerdictNoiseOnly or VerdictMismatch
	// Regressions are the keys that are not noise.
	Regressions []string `json:"regressions,omitempty"`
	// Noise are the keys that also differ between production and the
	// baseline.
	Noise []string `json:"noise,omitempty"`
	// LearnedNoise are the keys that the noisy function called noise and
	// that do not differ vs the baseline (or there was no baseline).
	LearnedNoise []string `json:"learned_noise,omitempty"`
}

// Judge gives the verdict on cand, a target's Result.
//
// baseline is the Result of the same request against the baseline target
// (production's version running beside the candidate), or nil when there
// is none or it failed. As in Diffy, a difference key of cand that is
// also a difference key of baseline is noise: production itself does not
// answer that part the same way twice, so the candidate cannot be blamed
// for it. This is by key: "body:$.items[*].price" differing vs the
// baseline makes every price of every item noise for this pair, and
// "body:text" differing vs the baseline makes any text difference noise.
//
// noisy, when not nil, reports keys learned to be noisy for the request's
// route (NoiseLearner.NoisyFunc); they are noise too.
//
// Ignored headers and paths never become keys and so play no part. The
// verdict is VerdictMatch when cand has no key, VerdictNoiseOnly when every
// key is noise, VerdictMismatch otherwise.
func Judge(cand, baseline *Result, noisy func(key string) bool) Judgement {
	if len(cand.Keys) == 0 {
		return Judgement{Verdict: VerdictMatch}
	}
	var base map[string]bool
	if baseline != nil && len(baseline.Keys) > 0 {
		base = make(map[string]bool, len(baseline.Keys))
		for _, k := range baseline.Keys {
			base[k] = true
		}
	}
	var j Judgement
	for _, k := range cand.Keys {
		switch {
		case base[k]:
			j.Noise = append(j.Noise, k)
		case noisy != nil && noisy(k):
			j.LearnedNoise = append(j.LearnedNoise, k)
		default:
			j.Regressions = append(j.Regressions, k)
		}
	}
	j.Verdict = VerdictNoiseOnly
	if len(j.Regressions) > 0 {
		j.Verdict = VerdictMismatch
	}
	return j
}
