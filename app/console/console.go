package console

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"

	"github.com/tongban/tongban/internal/webui"
)

//go:embed assets
var files embed.FS

// Handler serves the console under /console/. dev says whether the server runs in dev mode:
// only then does the page offer the dev service owners' published secrets.
func Handler(dev bool) http.Handler {
	sub, err := fs.Sub(files, "assets")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	static := webui.FS("/console/", sub)
	mode := []byte(`{"dev":false}`)
	if dev {
		// Only a dev server names its owners' published secrets: a production page has none
		// to show, even hidden.
		mode = []byte(`{"dev":true,"owners":[` +
			`{"client":"jiaxing-transport","secret":"dev-jiaxing-transport-secret","department":"嘉兴市交通运输局"},` +
			`{"client":"zhejiang-health","secret":"dev-zhejiang-health-secret","department":"浙江省卫生健康委员会"}]}`)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// The page holds a token: nothing but this origin may load, frame or receive from it.
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if strings.TrimPrefix(r.URL.Path, "/console/") == "mode.json" {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.Header().Set("Allow", "GET, HEAD")
				http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
				return
			}
			h.Set("Content-Type", "application/json")
			h.Set("Cache-Control", "no-store")
			_, _ = w.Write(mode)
			return
		}
		static.ServeHTTP(w, r)
	})
}
