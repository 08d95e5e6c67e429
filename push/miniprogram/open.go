package miniprogram

import (
	"errors"
	"slices"
	"strings"

	"github.com/tongban/tongban/internal/seal"
	"github.com/tongban/tongban/push/channel"
)

func openUser(kek []byte, kind channel.Kind, sealed string) (string, error) {
	u, err := seal.Open(kek, sealPurpose(kind), sealed)
	if err != nil {
		return "", err
	}
	return string(u), nil
}

func sortEndpoints(es []channel.Endpoint) {
	slices.SortFunc(es, func(a, b channel.Endpoint) int { return strings.Compare(a.ID, b.ID) })
}

func joinErrs(errs []error) error { return errors.Join(errs...) }
