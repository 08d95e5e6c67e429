package push

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"
)

// The mechanism's law over 100,000 draws: mean 0, variance 2p/(1-p)² with p = exp(-ε),
// P(0) = (1-p)/(1+p), and as many draws above 0 as below. The source is a seeded ChaCha8, so
// the test sees the same draws every run; the tolerances are six standard errors all the same,
// so that a correct mechanism on any seed passes.
func TestDiscreteLaplaceDistribution(t *testing.T) {
	const n = 100_000
	for _, eps := range []float64{0.1, 1.0} {
		src := rand.NewChaCha8([32]byte{byte(eps * 10)})
		var sum, sumSq float64
		var pos, neg, zero int
		for range n {
			z, err := discreteLaplace(src, eps)
			if err != nil {
				t.Fatal(err)
			}
			f := float64(z)
			sum += f
			sumSq += f * f
			switch {
			case z > 0:
				pos++
			case z < 0:
				neg++
			default:
				zero++
			}
		}
		p := math.Exp(-eps)
		wantVar := 2 * p / ((1 - p) * (1 - p))
		mean := sum / n
		variance := sumSq/n - mean*mean
		sd := math.Sqrt(wantVar)
		// Mean: standard error sd/√n.
		if se := sd / math.Sqrt(n); math.Abs(mean) > 6*se {
			t.Errorf("ε=%v: mean %.4f, want 0 ± %.4f", eps, mean, 6*se)
		}
		// Variance: the law's excess kurtosis is at most 3 (the continuous Laplace's), so the
		// sample variance's standard error is at most σ²·√(5/n).
		if se := wantVar * math.Sqrt(5.0/n); math.Abs(variance-wantVar) > 6*se {
			t.Errorf("ε=%v: variance %.2f, want %.2f ± %.2f", eps, variance, wantVar, 6*se)
		}
		p0 := (1 - p) / (1 + p)
		if se := math.Sqrt(p0 * (1 - p0) / n); math.Abs(float64(zero)/n-p0) > 6*se {
			t.Errorf("ε=%v: P(0) = %.4f, want %.4f", eps, float64(zero)/n, p0)
		}
		// Symmetry: pos - neg has mean 0 and standard deviation √(n(1-p0)).
		if se := math.Sqrt(n * (1 - p0)); math.Abs(float64(pos-neg)) > 6*se {
			t.Errorf("ε=%v: %d draws above 0 and %d below", eps, pos, neg)
		}
		t.Logf("ε=%v: mean %.4f variance %.2f (want %.2f) P(0) %.4f (want %.4f) above %d below %d", eps, mean, variance, wantVar, float64(zero)/n, p0, pos, neg)
	}
}

func TestDiscreteLaplaceFailsWithoutRandomness(t *testing.T) {
	if _, err := discreteLaplace(bytes.NewReader([]byte{1, 2, 3}), 0.1); err == nil {
		t.Fatal("a short source gave a draw")
	}
}

// zeroNoise is a source whose draws are all zero noise: both geometric variables take the
// smallest u and are equal.
type zeroNoise struct{}

func (zeroNoise) Read(b []byte) (int, error) { clear(b); return len(b), nil }

func TestReleaseSuppressesBelowThreshold(t *testing.T) {
	p := Privacy{Epsilon: 0.1, Threshold: 20, Random: zeroNoise{}}
	for _, tt := range []struct {
		name           string
		hits, n, total int64
		want           Audience
	}{
		{"one person", 1, 100, 100, Audience{Status: AudienceFewerThan, FewerThan: 20, Epsilon: 0.1}},
		{"nobody: fewer than k, not 0", 0, 100, 100, Audience{Status: AudienceFewerThan, FewerThan: 20, Epsilon: 0.1}},
		{"at the threshold", 20, 100, 100, Audience{Status: AudienceEstimated, Count: 20, Epsilon: 0.1}},
		{"a sample scaled up", 10, 1000, 5000, Audience{Status: AudienceEstimated, Count: 50, Epsilon: 0.1}},
		{"a scaled sample below k", 3, 1000, 5000, Audience{Status: AudienceFewerThan, FewerThan: 20, Epsilon: 0.1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.release(tt.hits, tt.n, tt.total)
			if err != nil || got != tt.want {
				t.Fatalf("release = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
