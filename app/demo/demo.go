package demo

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"regexp"
	"time"

	"github.com/tongban/tongban/internal/devidp"
	"github.com/tongban/tongban/internal/webui"
)

//go:embed assets
var files embed.FS

// Prefix is where the demo is served; Handler expects the full path.
const Prefix = "/demo/"

// appID is what a phone's path may name: the page itself checks it against the member apps.
var appID = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// Handler serves /demo/ (the three phones), /demo/phone/{app} (one phone's page),
// /demo/citizens.json and the embedded assets.
func Handler() http.Handler {
	sub, err := fs.Sub(files, "assets")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	assets := webui.FS(Prefix, sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest := r.URL.Path[min(len(Prefix), len(r.URL.Path)):]
		switch {
		case rest == "citizens.json":
			serveCitizens(w, r)
			return
		case len(rest) > len("phone/") && rest[:len("phone/")] == "phone/":
			if !appID.MatchString(rest[len("phone/"):]) {
				http.NotFound(w, r)
				return
			}
			// Every phone is the same page; it reads its app from the path. The provider's
			// redirect back carries code, state and iss in the query, which the page reads.
			r2 := r.Clone(r.Context())
			r2.URL.Path = Prefix + "phone.html"
			assets.ServeHTTP(w, r2)
			return
		}
		assets.ServeHTTP(w, r)
	})
}

// citizen is what the pickers need of a sample citizen: who, and their account in each app.
type citizen struct {
	Key      string             `json:"key"`
	Name     string             `json:"name"`
	IDNumber string             `json:"idNumber"` // synthetic; the data platform may name a person by it
	Accounts map[string]account `json:"accounts"`
}

type account struct {
	Subject string `json:"subject"`
	Level   int    `json:"level"`
}

var acrLevel = map[string]int{devidp.ACRLevel1: 1, devidp.ACRLevel2: 2, devidp.ACRLevel3: 3, devidp.ACRFace: 4}

// serveCitizens answers the sample citizens in their table's order (devidp.Fixtures'). One of them turns 60 this
// month, so the list is built per request.
func serveCitizens(w http.ResponseWriter, r *http.Request) {
	var out []citizen
	for _, c := range devidp.Fixtures(time.Now()) {
		cz := citizen{Key: c.Key, Name: c.Name, IDNumber: c.IDNumber, Accounts: map[string]account{}}
		for app, a := range c.Accounts {
			cz.Accounts[app] = account{Subject: a.Subject, Level: acrLevel[a.ACR]}
		}
		out = append(out, cz)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}
