package fakewechat

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tongban/tongban/internal/fakevendor"
)

// Bounds of what the server keeps and reads.
const (
	// Keep is how many accepted messages the server remembers.
	Keep = 1000
	// MaxCodes bounds the login codes alive at once (LoginCode refuses beyond it).
	MaxCodes = 10000
	// MaxBody bounds a request body, as WeChat's gateway does.
	MaxBody = 64 << 10
	// TokenLife is WeChat's expires_in for an access token.
	TokenLife = 7200 * time.Second
	// TokenOverlap is how long a token keeps working after a newer one was issued.
	TokenOverlap = 5 * time.Minute
	// CodeLife is how long a wx.login code can be exchanged.
	CodeLife = 5 * time.Minute
)

// Server is a fake of WeChat's server API for mini-programs: access tokens, code2Session and
// subscription messages. It is safe for concurrent use.
type Server struct {
	now       func() time.Time
	tokenLife time.Duration

	mu       sync.Mutex
	apps     map[string]*appState
	tokens   map[string]*tokenState // every live token of every app
	codes    map[string]*codeState
	seq      int64
	messages fakevendor.Ring[Message]
	replies  fakevendor.Replies[Reply] // Fail, and Script by openid
	counts   map[string]int            // requests per endpoint and app ("token wx1")
}

type appState struct {
	secret    string
	openids   map[string]bool
	templates map[string][]string // template id → its keys
	subs      map[subKey]*subState
	pages     map[string]bool // nil: any page
	quota     int             // send calls a day; 0: no limit
	quotaDay  string
	quotaUsed int
}

type tokenState struct {
	appID   string
	expires time.Time
}

type codeState struct {
	appID, openID string
	expires       time.Time
	used          bool
}

type subKey struct{ openID, template string }

type subState struct {
	oneTime  int // sends left from one-time accepts
	longTerm bool
}

// Message is one subscription message the server accepted.
type Message struct {
	MsgID      int64             `json:"msgid"`
	AppID      string            `json:"appid"`
	ToUser     string            `json:"touser"`
	TemplateID string            `json:"template_id"`
	Page       string            `json:"page,omitempty"`
	State      string            `json:"miniprogram_state,omitempty"`
	Lang       string            `json:"lang,omitempty"`
	Data       map[string]string `json:"data"`
	At         time.Time         `json:"at"`
}

// Option configures a Server.
type Option func(*Server)

// WithClock sets the clock of token and code expiry, quota days and message stamps.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithTokenLife sets the expires_in of the tokens the server issues (default TokenLife).
func WithTokenLife(d time.Duration) Option { return func(s *Server) { s.tokenLife = d } }

// New returns an empty server; add apps with AddApp.
func New(opts ...Option) *Server {
	s := &Server{
		now: time.Now, tokenLife: TokenLife,
		apps: map[string]*appState{}, tokens: map[string]*tokenState{}, codes: map[string]*codeState{},
		counts: map[string]int{}, messages: fakevendor.NewRing[Message](Keep),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// AddApp registers a mini-program with its secret.
func (s *Server) AddApp(appID, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[appID] = &appState{secret: secret, openids: map[string]bool{}, templates: map[string][]string{}, subs: map[subKey]*subState{}}
}

// AddTemplate registers a subscription template of appID with its keys ("thing1", "time2").
func (s *Server) AddTemplate(appID, templateID string, keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.app(appID).templates[templateID] = append([]string(nil), keys...)
}

// SetPages makes appID's pages the only ones a message may open (else 41030); without it any
// page is accepted.
func (s *Server) SetPages(appID string, pages ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.app(appID)
	a.pages = map[string]bool{}
	for _, p := range pages {
		a.pages[p] = true
	}
}

// SetQuota sets appID's daily send quota (0: none); calls past it answer 45009 until midnight
// in China.
func (s *Server) SetQuota(appID string, perDay int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.app(appID).quota = perDay
}

// AddUser makes openID known to appID, as a person who once opened the mini-program.
func (s *Server) AddUser(appID, openID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.app(appID).openids[openID] = true
}

// LoginCode simulates wx.login in appID's mini-program for openID: a code code2Session
// exchanges once, within CodeLife. "" when MaxCodes codes are alive.
func (s *Server) LoginCode(appID, openID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.codes) >= MaxCodes {
		for c, st := range s.codes {
			if now.After(st.expires) {
				delete(s.codes, c)
			}
		}
		if len(s.codes) >= MaxCodes {
			return ""
		}
	}
	s.app(appID).openids[openID] = true
	code := randHex(16)
	s.codes[code] = &codeState{appID: appID, openID: openID, expires: now.Add(CodeLife)}
	return code
}

// Accept simulates the person accepting templateID in wx.requestSubscribeMessage: a one-time
// accept allows one message (accepts add up), a long-term one allows messages for good.
func (s *Server) Accept(appID, openID, templateID string, oneTime bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.app(appID)
	a.openids[openID] = true
	k := subKey{openID, templateID}
	st := a.subs[k]
	if st == nil {
		st = &subState{}
		a.subs[k] = st
	}
	if oneTime {
		st.oneTime++
	} else {
		st.longTerm = true
	}
}

// Subscriptions answers how many one-time sends openID has left for templateID and whether it
// has a long-term subscription.
func (s *Server) Subscriptions(appID, openID, templateID string) (oneTime int, longTerm bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.app(appID).subs[subKey{openID, templateID}]; st != nil {
		return st.oneTime, st.longTerm
	}
	return 0, false
}

// Messages returns the accepted messages, newest first, at most Keep.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.messages.Newest()
}

// Requests answers how many requests reached endpoint ("token", "jscode2session", "send")
// for appID (the appid in the query, or the one owning the access token).
func (s *Server) Requests(endpoint, appID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[endpoint+" "+appID]
}

// ExpireTokens makes every token of appID expired now, as if two hours had passed for them.
func (s *Server) ExpireTokens(appID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, t := range s.tokens {
		if t.appID == appID {
			t.expires = now
		}
	}
}

// app answers appID's state, creating an app without a secret (whose token calls fail) when
// a test scripts an app it did not add.
func (s *Server) app(appID string) *appState {
	a := s.apps[appID]
	if a == nil {
		a = &appState{openids: map[string]bool{}, templates: map[string][]string{}, subs: map[subKey]*subState{}}
		s.apps[appID] = a
	}
	return a
}

// Handler serves the API. The paths are matched on their ending, so the handler works mounted
// under any prefix (dev mode's /dev/wechat).
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case strings.HasSuffix(p, "/cgi-bin/token"):
			s.serveToken(w, r)
		case strings.HasSuffix(p, "/sns/jscode2session"):
			s.serveCode2Session(w, r)
		case strings.HasSuffix(p, "/cgi-bin/message/subscribe/send"):
			s.serveSend(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

// wxError is WeChat's error answer, always with HTTP 200.
type wxError struct {
	ErrCode int64  `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; encoding=utf-8")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}

// writeErr answers code with WeChat's errmsg and a request id, as WeChat does.
func writeErr(w http.ResponseWriter, code int64, msg string) {
	writeJSON(w, wxError{ErrCode: code, ErrMsg: msg + " rid: " + randHex(4) + "-" + randHex(4)})
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	appID := q.Get("appid")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts["token "+appID]++
	a := s.apps[appID]
	switch {
	case q.Get("grant_type") != "client_credential":
		writeErr(w, 40002, "invalid grant_type")
		return
	case a == nil || a.secret == "":
		writeErr(w, 40013, "invalid appid")
		return
	case q.Get("secret") != a.secret:
		writeErr(w, 40125, "invalid appsecret")
		return
	}
	now := s.now()
	for tok, t := range s.tokens {
		switch {
		case !now.Before(t.expires):
			delete(s.tokens, tok) // expired: forgotten, so it reads as unknown (40001) later
		case t.appID == appID && t.expires.After(now.Add(TokenOverlap)):
			t.expires = now.Add(TokenOverlap)
		}
	}
	tok := "fk_" + randHex(48)
	s.tokens[tok] = &tokenState{appID: appID, expires: now.Add(s.tokenLife)}
	writeJSON(w, struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}{tok, int64(s.tokenLife / time.Second)})
}

func (s *Server) serveCode2Session(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	appID, code := q.Get("appid"), q.Get("js_code")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts["jscode2session "+appID]++
	a := s.apps[appID]
	switch {
	case a == nil || a.secret == "":
		writeErr(w, 40013, "invalid appid")
		return
	case q.Get("secret") != a.secret:
		writeErr(w, 40125, "invalid appsecret")
		return
	case q.Get("grant_type") != "authorization_code":
		writeErr(w, 40002, "invalid grant_type")
		return
	case code == "":
		writeErr(w, 41008, "missing code")
		return
	}
	c := s.codes[code]
	switch {
	case c == nil || c.appID != appID || !s.now().Before(c.expires):
		writeErr(w, 40029, "invalid code")
		return
	case c.used:
		writeErr(w, 40163, "code been used")
		return
	}
	c.used = true
	writeJSON(w, struct {
		SessionKey string `json:"session_key"`
		OpenID     string `json:"openid"`
	}{randHex(12), c.openID})
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// mask keeps the ends of an openid: enough to tell people apart on the dev page.
func mask(id string) string {
	if len(id) < 12 {
		return "…"
	}
	return id[:4] + "…" + id[len(id)-4:]
}
