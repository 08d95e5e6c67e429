package entity_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/federation"
	"github.com/tongban/tongban/federation/entity"
	"github.com/tongban/tongban/internal/fakefed"
	"github.com/tongban/tongban/internal/testenv"
)

func TestConfigurationIsSelfSignedWithTheFederationKeys(t *testing.T) {
	t.Parallel()
	s := store(t)
	tb := serve(t, s, entity.Options{TrustMarkIssuer: &entity.TrustMarkIssuer{Types: []string{markType}}, OrganizationName: "通办"})
	st := tb.configuration(t)
	if st.Issuer != tb.ID || st.Subject != tb.ID {
		t.Errorf("iss %s sub %s, want both %s", st.Issuer, st.Subject, tb.ID)
	}
	if st.AuthorityHints != nil {
		t.Errorf("authority_hints %v present for an anchor", st.AuthorityHints)
	}
	fed := tb.Keys.PublicKeys()
	if len(st.JWKS.Keys) != len(fed.Keys) || st.JWKS.Keys[0].KeyID != fed.Keys[0].KeyID || st.KeyID != fed.Keys[0].KeyID {
		t.Errorf("jwks %v signed by %s, want the federation keys %v", st.JWKS.Keys, st.KeyID, fed.Keys)
	}
	fe := st.Metadata["federation_entity"]
	for name, path := range map[string]string{
		"federation_fetch_endpoint": entity.FetchPath, "federation_list_endpoint": entity.ListPath,
		"federation_trust_mark_endpoint": entity.TrustMarkPath,
	} {
		if fe[name] != tb.ID+path {
			t.Errorf("%s = %v, want %s", name, fe[name], tb.ID+path)
		}
	}
	if fe["organization_name"] != "通办" || st.Metadata["openid_provider"]["issuer"] != tb.ID {
		t.Errorf("metadata %v: the caller's types or organization_name missing", st.Metadata)
	}
	// The JWS header says entity-statement+jwt (ParseStatement checks it; say it here too).
	code, _, body := tb.get(t, entity.ConfigurationPath)
	jws, err := jose.ParseSignedCompact(body, federation.DefaultAlgorithms)
	if code != 200 || err != nil || jws.Signatures[0].Header.ExtraHeaders["typ"] != federation.TypeEntityStatement {
		t.Errorf("header %v, %v", jws, err)
	}
}

func TestConfigurationPresentsTrustMarksAndHints(t *testing.T) {
	t.Parallel()
	s := store(t)
	fed := fakefed.New()
	t.Cleanup(fed.Close)
	ta := fed.Add("ta")
	// The trust mark is about Tongban's entity id, known once its server runs: a first entity
	// gives the server's URL, and the one tested has an id with a path on another server.
	tb0 := serve(t, s, entity.Options{})
	id := tb0.ID + "/alliance"
	raw, err := federation.SignTrustMark(&federation.TrustMark{Issuer: ta.ID, Subject: id, TrustMarkType: markType, IssuedAt: 1}, ta.Key)
	if err != nil {
		t.Fatal(err)
	}
	tb := serve(t, s, entity.Options{EntityID: id, AuthorityHints: []string{ta.ID}, TrustMarks: []string{raw}})
	code, _, body := tb.get(t, "/alliance"+entity.ConfigurationPath)
	if code != 200 {
		t.Fatalf("configuration under the id's path: %d %s", code, body)
	}
	var v federation.Verifier
	st, err := v.VerifyConfiguration(body, id)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st.AuthorityHints, []string{ta.ID}) || len(st.TrustMarks) != 1 || st.TrustMarks[0].TrustMarkType != markType {
		t.Errorf("authority_hints %v trust_marks %v", st.AuthorityHints, st.TrustMarks)
	}
	if st.FetchEndpoint() != id+entity.FetchPath {
		t.Errorf("fetch endpoint %s, want under %s", st.FetchEndpoint(), id)
	}
}

func TestFetchServesAVerifiableSubordinateStatement(t *testing.T) {
	t.Parallel()
	s := store(t)
	tb := serve(t, s, entity.Options{})
	sub, _ := member("https://leaf.example")
	one := 1
	sub.MetadataPolicy = federation.Policy{"openid_relying_party": {"scope": {"subset_of": []any{"openid", "profile"}}}}
	sub.Constraints = &federation.Constraints{MaxPathLength: &one}
	if err := tb.Add(context.Background(), sub); err != nil {
		t.Fatal(err)
	}
	code, h, body := tb.get(t, entity.FetchPath+"?sub="+url.QueryEscape(sub.EntityID))
	if code != 200 || h.Get("Content-Type") != federation.ContentTypeEntityStatement {
		t.Fatalf("fetch: %d %s %s", code, h.Get("Content-Type"), body)
	}
	conf := tb.configuration(t)
	var v federation.Verifier
	st, err := v.VerifyStatement(body, tb.ID, sub.EntityID, conf.JWKS)
	if err != nil {
		t.Fatalf("VerifyStatement: %v", err)
	}
	if st.JWKS.Keys[0].KeyID != sub.JWKS.Keys[0].KeyID || st.MetadataPolicy["openid_relying_party"]["scope"] == nil ||
		st.Constraints == nil || *st.Constraints.MaxPathLength != 1 || st.SourceEndpoint != tb.ID+entity.FetchPath {
		t.Errorf("statement %+v", st)
	}
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	s := store(t)
	a, _ := member("https://a.example", markType)
	b, _ := member("https://b.example")
	tb := serve(t, s, entity.Options{Subordinates: []entity.Subordinate{b}, TrustMarkIssuer: &entity.TrustMarkIssuer{Types: []string{markType}}})
	if err := tb.Add(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ query, want string }{
		{"", `["https://a.example","https://b.example"]`},
		{"?trust_marked=true", `["https://a.example"]`},
		{"?trust_marked=false", `["https://a.example","https://b.example"]`},
		{"?trust_mark_type=" + url.QueryEscape(markType), `["https://a.example"]`},
		{"?trust_mark_type=https%3A%2F%2Fother", `[]`},
	} {
		code, h, body := tb.get(t, entity.ListPath+tc.query)
		if code != 200 || h.Get("Content-Type") != "application/json" || body != tc.want {
			t.Errorf("list%s: %d %s, want %s", tc.query, code, body, tc.want)
		}
	}
}

func TestEndpointsRejectBadRequests(t *testing.T) {
	t.Parallel()
	s := store(t)
	held, _ := member("https://held.example", markType)
	bare, _ := member("https://bare.example")
	tb := serve(t, s, entity.Options{Subordinates: []entity.Subordinate{held, bare},
		TrustMarkIssuer: &entity.TrustMarkIssuer{Types: []string{markType, "https://alliance.example/marks/other"}}})
	mt := url.QueryEscape(markType)
	for _, tc := range []struct {
		name, path string
		status     int
		code       string
	}{
		{"fetch without sub", entity.FetchPath, 400, "invalid_request"},
		{"fetch with an empty sub", entity.FetchPath + "?sub=", 400, "invalid_request"},
		{"fetch with sub twice", entity.FetchPath + "?sub=https://held.example&sub=https://bare.example", 400, "invalid_request"},
		{"fetch with a sub that is not an entity id", entity.FetchPath + "?sub=held.example", 400, "invalid_request"},
		{"fetch with a sub with a query", entity.FetchPath + "?sub=" + url.QueryEscape("https://held.example?x=1"), 400, "invalid_request"},
		{"fetch with a bad query encoding", entity.FetchPath + "?sub=%zz", 400, "invalid_request"},
		{"fetch with a query too long", entity.FetchPath + "?sub=https://a.example/" + strings.Repeat("a", 5000), 400, "invalid_request"},
		{"fetch of an unknown entity", entity.FetchPath + "?sub=https://unknown.example", 404, "not_found"},
		{"fetch of Tongban itself", entity.FetchPath + "?sub=" + url.QueryEscape(tb.ID), 404, "not_found"},
		{"list by entity_type", entity.ListPath + "?entity_type=openid_provider", 400, "unsupported_parameter"},
		{"list of intermediates", entity.ListPath + "?intermediate=true", 400, "unsupported_parameter"},
		{"list with trust_marked not a boolean", entity.ListPath + "?trust_marked=yes", 400, "invalid_request"},
		{"list with an empty trust_mark_type", entity.ListPath + "?trust_mark_type=", 400, "invalid_request"},
		{"trust mark without a type", entity.TrustMarkPath + "?sub=https://held.example", 400, "invalid_request"},
		{"trust mark without sub", entity.TrustMarkPath + "?trust_mark_type=" + mt, 400, "invalid_request"},
		{"trust mark with type twice", entity.TrustMarkPath + "?trust_mark_type=" + mt + "&trust_mark_type=" + mt + "&sub=https://held.example", 400, "invalid_request"},
		{"trust mark of a type not issued here", entity.TrustMarkPath + "?trust_mark_type=https://x.example&sub=https://held.example", 404, "not_found"},
		{"trust mark for an entity not holding it", entity.TrustMarkPath + "?trust_mark_type=" + mt + "&sub=https://bare.example", 404, "not_found"},
		{"trust mark for an issued type not held", entity.TrustMarkPath + "?trust_mark_type=" + url.QueryEscape("https://alliance.example/marks/other") + "&sub=https://held.example", 404, "not_found"},
		{"trust mark for an unknown entity", entity.TrustMarkPath + "?trust_mark_type=" + mt + "&sub=https://unknown.example", 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, h, body := tb.get(t, tc.path)
			var e struct{ Error, ErrorDescription string }
			_ = json.Unmarshal([]byte(body), &e)
			if code != tc.status || e.Error != tc.code || h.Get("Content-Type") != "application/json" {
				t.Errorf("%d %s, want %d %s", code, body, tc.status, tc.code)
			}
		})
	}
	resp, err := http.Post(tb.srv.URL+entity.FetchPath+"?sub=https://held.example", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST fetch: %d, want 405", resp.StatusCode)
	}
}

func TestTrustMarkEndpointIssuesVerifiableMarks(t *testing.T) {
	t.Parallel()
	s := store(t)
	held, _ := member("https://held.example", markType)
	issuerKey := fakefed.NewKey("tm-issuer-1")
	for _, tc := range []struct {
		name string
		key  *jose.JSONWebKey
	}{{"signed by the federation key", nil}, {"signed by the issuer's own key", &issuerKey}} {
		t.Run(tc.name, func(t *testing.T) {
			tb := serve(t, s, entity.Options{Subordinates: []entity.Subordinate{held},
				TrustMarkIssuers: map[string][]string{markType: {}}, // as anchor: anyone may issue it
				TrustMarkIssuer:  &entity.TrustMarkIssuer{Types: []string{markType}, Key: tc.key}})
			code, h, body := tb.get(t, entity.TrustMarkPath+"?trust_mark_type="+url.QueryEscape(markType)+"&sub=https://held.example")
			if code != 200 || h.Get("Content-Type") != entity.ContentTypeTrustMark {
				t.Fatalf("%d %s %s", code, h.Get("Content-Type"), body)
			}
			conf := tb.configuration(t)
			keys := func(iss string) (*jose.JSONWebKeySet, error) { return conf.JWKS, nil }
			v := federation.Verifier{}
			tm, err := v.VerifyTrustMark(body, "https://held.example", markType, conf, keys)
			if err != nil {
				t.Fatalf("VerifyTrustMark with the configuration's keys: %v", err)
			}
			if tm.Issuer != tb.ID || tm.ExpiresAt == 0 {
				t.Errorf("trust mark %+v", tm)
			}
		})
	}
}

var _ = testenv.Eventually
