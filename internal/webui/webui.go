package webui

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

//go:embed assets
var files embed.FS

// Shared is the shared modules, served at prefix (ending in "/"): gql.js, i18n.js, base.css.
func Shared(prefix string) http.Handler {
	sub, err := fs.Sub(files, "assets")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	return FS(prefix, sub)
}

// FS serves the files of fsys under prefix: GET and HEAD only, a directory's index.html for
// the directory, gzip when accepted, cached for a day.
func FS(prefix string, fsys fs.FS) http.Handler {
	s := &server{fsys: fsys, prefix: prefix}
	return s
}

type server struct {
	fsys   fs.FS
	prefix string
	cache  sync.Map // name → *asset
}

type asset struct {
	raw, gz []byte
	ctype   string
}

// modTime is the binary's: embedded files carry none.
var modTime = time.Now()

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, s.prefix)
	if name == "" || strings.HasSuffix(name, "/") {
		name += "index.html"
	}
	name = path.Clean(name)
	a, ok := s.load(name)
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("Cache-Control", "public, max-age=86400")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Add("Vary", "Accept-Encoding")
	body := a.raw
	if a.gz != nil && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	http.ServeContent(w, r, "", modTime, bytes.NewReader(body))
}

// load reads and compresses a file once.
func (s *server) load(name string) (*asset, bool) {
	if v, ok := s.cache.Load(name); ok {
		return v.(*asset), true
	}
	raw, err := fs.ReadFile(s.fsys, name)
	if err != nil {
		return nil, false
	}
	a := &asset{raw: raw, ctype: mime.TypeByExtension(path.Ext(name))}
	if a.ctype == "" {
		a.ctype = "application/octet-stream"
	}
	if compressible(a.ctype) {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		_, _ = zw.Write(raw)
		_ = zw.Close()
		if b.Len() < len(raw) {
			a.gz = b.Bytes()
		}
	}
	s.cache.Store(name, a)
	return a, true
}

func compressible(ctype string) bool {
	return strings.HasPrefix(ctype, "text/") || strings.Contains(ctype, "javascript") ||
		strings.Contains(ctype, "json") || strings.Contains(ctype, "svg")
}
