package metrics

import (
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Samples reads the family called name from a registry as a scrape would (Gather): each series'
// label set, as "k=v,k=v" in label order, with its counter value or histogram sample count.
// Tests of the packages that record into a Recorder read what they recorded through it (the
// module does not require prometheus/testutil's own dependencies).
func Samples(reg prometheus.Gatherer, name string) (map[string]float64, error) {
	families, err := reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("metrics: gather: %w", err)
	}
	out := map[string]float64{}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, lp.GetName()+"="+lp.GetValue())
			}
			v := m.GetCounter().GetValue()
			if h := m.GetHistogram(); h != nil {
				v = float64(h.GetSampleCount())
			}
			out[strings.Join(labels, ",")] = v
		}
	}
	return out, nil
}
