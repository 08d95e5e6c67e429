package demo

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, path string, gz bool) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	return rec
}

// Every phone is the same page, served compressed; a path that names no app is not.
func TestPhonePages(t *testing.T) {
	for _, app := range []string{"zheliban", "suishenban", "sufuban"} {
		rec := get(t, "/demo/phone/"+app+"?code=c&state=s", true)
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Encoding") != "gzip" {
			t.Fatalf("%s: %d %v", app, rec.Code, rec.Header())
		}
		zr, err := gzip.NewReader(rec.Body)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(zr)
		if !strings.Contains(string(body), `src="/demo/phone.js"`) {
			t.Fatalf("%s: not the phone page: %.200s", app, body)
		}
	}
	for _, path := range []string{"/demo/phone/", "/demo/phone/Zheliban", "/demo/phone/a/b", "/demo/nope.js"} {
		if rec := get(t, path, false); rec.Code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, rec.Code)
		}
	}
	if rec := get(t, "/demo/", false); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `src="/demo/demo.js"`) {
		t.Errorf("/demo/: %d %.200s", rec.Code, rec.Body.String())
	}
}

// The pickers' citizens: the sample table, with each account's subject and level.
func TestCitizens(t *testing.T) {
	rec := get(t, "/demo/citizens.json", false)
	var list []citizen
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 7 || list[0].Key != "wang-fang" || list[0].Name != "王芳" ||
		list[0].Accounts["zheliban"] != (account{Subject: "zlb-0001", Level: 4}) || len(list[0].IDNumber) != 18 {
		t.Fatalf("citizens: %+v", list)
	}
	if _, ok := list[2].Accounts["zheliban"]; ok || list[2].Accounts["suishenban"].Level != 1 {
		t.Errorf("刘洋: %+v, want no 浙里办 account and a level-1 随申办 one", list[2])
	}
}
