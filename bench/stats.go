package bench

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the p-th percentile (0 ≤ p ≤ 100) of sorted by the
// nearest-rank method: the smallest value such that at least p % of the
// values are less than or equal to it. It returns 0 for an empty slice.
// sorted must be in ascending order; it is not modified.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	if p >= 100 {
		return sorted[len(sorted)-1]
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

// Ratio returns num/den, or 0 when den is 0.
func Ratio(num, den float64) float64 {
	if den == 0 {
		return 0
	}
	return num / den
}

// Summary is the distribution of a set of latencies.
type Summary struct {
	N             int
	P50, P99, Max time.Duration
	// CDF holds the 0th to 100th percentiles (101 values) when N > 0.
	CDF []time.Duration
}

// Summarize sorts a copy of samples and summarises it.
func Summarize(samples []time.Duration) Summary {
	s := slices.Clone(samples)
	slices.Sort(s)
	sum := Summary{N: len(s)}
	if len(s) == 0 {
		return sum
	}
	sum.P50 = Percentile(s, 50)
	sum.P99 = Percentile(s, 99)
	sum.Max = s[len(s)-1]
	sum.CDF = make([]time.Duration, 101)
	for i := range sum.CDF {
		sum.CDF[i] = Percentile(s, float64(i))
	}
	return sum
}

// ms converts a duration to float milliseconds rounded to microseconds.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/1e3) / 1e3
}
