package graph

import (
	"encoding/base64"
	"slices"
	"strings"
)

// maxPage is the largest `first` of the lists paged in memory (services, rules, the inbox).
const maxPage = 100

// cursor and parseCursor make an opaque cursor of an id in a list of kind.
func cursor(kind, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + id))
}

func parseCursor(kind, c string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", false
	}
	id, ok := strings.CutPrefix(string(b), kind+":")
	return id, ok && id != ""
}

// pageOf cuts the page of first items after the cursor out of a list held in memory, by each
// item's id; a cursor of an item no longer in the list is BAD_USER_INPUT.
func pageOf[T any](list []T, idOf func(T) string, kind string, first *int, after *string) ([]T, bool, error) {
	n := pageSize(first)
	if n < 1 || n > maxPage {
		return nil, false, newError(CodeBadUserInput, "first must be between 1 and %d", maxPage)
	}
	start := 0
	if after != nil {
		id, ok := parseCursor(kind, *after)
		i := slices.IndexFunc(list, func(t T) bool { return ok && idOf(t) == id })
		if i < 0 {
			return nil, false, newError(CodeBadUserInput, "after is not a cursor of this list")
		}
		start = i + 1
	}
	end := min(start+n, len(list))
	return list[start:end], end < len(list), nil
}
