package alipay

import (
	"encoding/json"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tongban/tongban/push/channel"
)

// beijing is the zone dates are shown in and the gateway's timestamps are read in.
var beijing = time.FixedZone("CST", 8*3600)

// value is one keyword's entry in the send's data parameter.
type value struct {
	Value string `json:"value"`
}

// render answers the send's page and data (the JSON string of keyword → {"value": …}), each
// value cut to the template's bound; ok is false when the data is still over MaxData, which
// only a template with very many keywords can reach.
func render(t Template, n channel.Note) (page, data string, ok bool) {
	max := t.MaxRunes
	if max == 0 {
		max = MaxValue
	}
	vals := make(map[string]value, len(t.Fields))
	for k, src := range t.Fields {
		vals[k] = value{truncate(source(src, n), max)}
	}
	b, err := json.Marshal(vals)
	if err != nil || utf8.RuneCount(b) > MaxData {
		return "", "", false
	}
	page = strings.ReplaceAll(t.Page, "{id}", url.QueryEscape(n.ID))
	if utf8.RuneCountInString(page) > MaxPage {
		page = strings.ReplaceAll(t.Page, "{id}", "")
	}
	return page, string(b), true
}

func source(src string, n channel.Note) string {
	switch src {
	case "title":
		return n.Title
	case "service":
		if n.ServiceName != "" {
			return n.ServiceName
		}
		return n.Service
	case "body":
		return n.Body
	case "category":
		return n.Category
	case "date":
		return n.Created.In(beijing).Format("2006-01-02")
	case "time":
		return n.Created.In(beijing).Format("2006-01-02 15:04")
	}
	return strings.TrimPrefix(src, "text:")
}

// truncate cuts s to at most max characters, ending in "…" when cut, on a rune boundary; line
// breaks become spaces (a subscription message shows one line per keyword).
func truncate(s string, max int) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "")), " ")
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	if max <= 1 {
		return string([]rune(s)[:max])
	}
	return string([]rune(s)[:max-1]) + "…"
}
