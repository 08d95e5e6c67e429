package fakealipay

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tongban/tongban/internal/fakevendor"
)

// Keep is how many accepted messages, and how many attempts, the server remembers.
const Keep = 1000

// maxBody bounds one request's form; biz_content of a send is ~3 KB at most.
const maxBody = 1 << 20

// Beijing is the zone of the gateway's timestamp parameter ("yyyy-MM-dd HH:mm:ss", China
// Standard Time). A fixed zone, so the fake needs no tzdata.
var Beijing = time.FixedZone("CST", 8*3600)

// The methods the fake serves.
const (
	MethodOAuthToken = "alipay.system.oauth.token"
	MethodSend       = "alipay.open.app.mini.templatemessage.send"
)

// Server is the Alipay open platform gateway (POST /gateway.do) for the methods above. It is
// safe for concurrent use.
type Server struct {
	key      *rsa.PrivateKey // Alipay's own: signs answers
	now      func() time.Time
	skew     time.Duration
	codeLife time.Duration

	mu       sync.Mutex
	seq      uint64
	apps     map[string]*app
	codes    map[string]loginCode
	subs     map[subKey]bool // → one-time
	received fakevendor.Ring[Received]
	attempts fakevendor.Ring[Attempt]
	replies  fakevendor.Replies[Reply] // Fail, and Script by user id
}

type app struct {
	pub       *rsa.PublicKey
	templates map[string]template
	quota     int // sends per window; 0: unlimited
	window    time.Duration
	winStart  time.Time
	used      int
}

type loginCode struct {
	app, user string
	expires   time.Time
}

type subKey struct{ app, user, template string }

// Option configures a Server.
type Option func(*Server)

// WithClock sets the clock for timestamps, code lifetimes and quota windows.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithTimestampWindow sets how far a request's timestamp may be from the server's clock
// (default 15 minutes, either way).
func WithTimestampWindow(d time.Duration) Option { return func(s *Server) { s.skew = d } }

// WithCodeLife sets how long a login code lives (default 5 minutes; Alipay documents 3 days
// for some codes and minutes for others, so tests should not depend on it).
func WithCodeLife(d time.Duration) Option { return func(s *Server) { s.codeLife = d } }

// New returns a gateway with a freshly generated Alipay key pair (RSA 2048). PublicKey gives the
// public half for the SDK's LoadAliPayPublicKey.
func New(opts ...Option) (*Server, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("fakealipay: alipay key: %w", err)
	}
	s := &Server{key: key, now: time.Now, skew: 15 * time.Minute, codeLife: 5 * time.Minute,
		apps: make(map[string]*app)}
	for _, o := range opts {
		o(s)
	}
	s.resetLocked()
	return s, nil
}

// PublicKey answers the Alipay public key as the open platform's console shows it: base64 of
// the PKIX DER, no PEM armour. The SDK's LoadAliPayPublicKey takes it as it is.
func (s *Server) PublicKey() string {
	der, _ := x509.MarshalPKIXPublicKey(&s.key.PublicKey)
	return base64.StdEncoding.EncodeToString(der)
}

// AddApp registers a mini-program with its app public key (the key requests are verified with).
func (s *Server) AddApp(appID string, pub *rsa.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.apps[appID]; ok {
		a.pub = pub
		return
	}
	s.apps[appID] = &app{pub: pub, templates: make(map[string]template)}
}

// NewApp generates a key pair for appID, registers the public half and answers the private
// half as base64 PKCS#1 DER, the form the SDK's alipay.New loads: for dev mode and tests that
// need no key of their own. It is a throwaway key that only this fake accepts.
func (s *Server) NewApp(appID string) (privateKey string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", fmt.Errorf("fakealipay: app key: %w", err)
	}
	s.AddApp(appID, &key.PublicKey)
	return base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PrivateKey(key)), nil
}

// SetQuota lets appID send n messages per window; further sends in the window answer
// CallLimited. n = 0 lifts the quota.
func (s *Server) SetQuota(appID string, n int, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.apps[appID]; a != nil {
		a.quota, a.window, a.winStart, a.used = n, window, s.now(), 0
	}
}

// Received is one message the gateway accepted.
type Received struct {
	ID         string            `json:"id"`
	AppID      string            `json:"appId"`
	ToUserID   string            `json:"toUserId,omitempty"`
	ToOpenID   string            `json:"toOpenId,omitempty"`
	TemplateID string            `json:"templateId"`
	Page       string            `json:"page"`
	Data       map[string]string `json:"data"` // keyword → value
	OneTime    bool              `json:"oneTime"`
	ReceivedAt time.Time         `json:"receivedAt"`
}

// Attempt is one request to the gateway, accepted or refused.
type Attempt struct {
	At      time.Time
	AppID   string
	Method  string
	Code    string // "10000" when accepted
	SubCode string
}

// Handler serves the gateway. Any path is accepted, so it can be mounted anywhere; the SDK's
// gateway is the server's URL plus "/gateway.do".
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serve) }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	a := Attempt{At: s.now()}
	field, body, reply := s.handle(w, r, &a)
	a.Code, a.SubCode = body.Code, body.SubCode
	s.mu.Lock()
	s.attempts.Add(a)
	s.mu.Unlock()
	if reply.raw != nil {
		w.Header().Set("Content-Type", reply.rawType)
		_, _ = w.Write(reply.raw)
		return
	}
	s.writeSigned(w, field, body, reply.badSign)
}

// answer is what goes in the "<method>_response" (or "error_response") object. Fields beyond
// the common four are in extra.
type answer struct {
	Code    string `json:"code"`
	Msg     string `json:"msg"`
	SubCode string `json:"sub_code,omitempty"`
	SubMsg  string `json:"sub_msg,omitempty"`
	extra   map[string]any
}

func (b answer) MarshalJSON() ([]byte, error) {
	m := map[string]any{"code": b.Code, "msg": b.Msg}
	if b.SubCode != "" {
		m["sub_code"], m["sub_msg"] = b.SubCode, b.SubMsg
	}
	for k, v := range b.extra {
		m[k] = v
	}
	return json.Marshal(m)
}

func success(extra map[string]any) answer { return answer{Code: "10000", Msg: "Success", extra: extra} }

// handle runs the gateway's checks in the gateway's order and answers the response field's
// name, its body and the scripted reply that shaped it (for a bad signature or a raw body).
func (s *Server) handle(w http.ResponseWriter, r *http.Request, a *Attempt) (string, answer, Reply) {
	const errField = "error_response"
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		return errField, missing("isv.missing-method", "缺少方法名参数"), Reply{}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		return errField, invalid("isv.invalid-parameter", "参数无效"), Reply{}
	}
	f := r.Form
	a.Method, a.AppID = f.Get("method"), f.Get("app_id")
	for _, p := range []struct{ name, sub, msg string }{
		{"method", "isv.missing-method", "缺少方法名参数"},
		{"sign", "isv.missing-signature", "缺少签名参数"},
		{"sign_type", "isv.missing-signature-type", "缺少签名类型参数"},
		{"app_id", "isv.missing-app-id", "缺少appId参数"},
		{"timestamp", "isv.missing-timestamp", "缺少时间戳参数"},
		{"version", "isv.missing-version", "缺少版本参数"},
	} {
		if f.Get(p.name) == "" {
			return errField, missing(p.sub, p.msg), Reply{}
		}
	}
	s.mu.Lock()
	ap := s.apps[a.AppID]
	var pub *rsa.PublicKey
	if ap != nil {
		pub = ap.pub
	}
	s.mu.Unlock()
	if pub == nil {
		return errField, invalid("isv.invalid-app-id", "无效的AppID参数"), Reply{}
	}
	if f.Get("sign_type") != "RSA2" {
		return errField, invalid("isv.invalid-signature-type", "无效的签名类型"), Reply{}
	}
	ts, err := time.ParseInLocation("2006-01-02 15:04:05", f.Get("timestamp"), Beijing)
	if err != nil || ts.Sub(s.now()).Abs() > s.skew {
		return errField, invalid("isv.invalid-timestamp", "非法的时间戳参数"), Reply{}
	}
	if !verify(pub, f) {
		return errField, invalid("isv.invalid-signature", "验签出错"), Reply{}
	}
	field := strings.ReplaceAll(a.Method, ".", "_") + "_response"
	if a.Method == MethodOAuthToken {
		// Alipay answers the token method's refusals as error_response (signed).
		field = errField
	}
	if a.Method != MethodOAuthToken && a.Method != MethodSend {
		return errField, invalid("isv.invalid-method", "不存在的方法名"), Reply{}
	}
	next := s.play(r, s.popNext())
	if next.refuses() || next.raw != nil {
		return field, next.answer(), next
	}
	var ans answer
	var reply Reply
	if a.Method == MethodOAuthToken {
		if ans = s.oauthToken(a.AppID, r.Form); ans.Code == "10000" {
			field = strings.ReplaceAll(a.Method, ".", "_") + "_response"
		}
	} else {
		ans, reply = s.send(r, a.AppID, r.Form.Get("biz_content"))
	}
	reply.badSign = reply.badSign || next.badSign
	return field, ans, reply
}

func missing(sub, msg string) answer {
	return answer{Code: "40001", Msg: "Missing Required Arguments", SubCode: sub, SubMsg: msg}
}

func invalid(sub, msg string) answer {
	return answer{Code: "40002", Msg: "Invalid Arguments", SubCode: sub, SubMsg: msg}
}

func business(sub, msg string) answer {
	return answer{Code: "40004", Msg: "Business Failed", SubCode: sub, SubMsg: msg}
}

// verify checks an RSA2 request signature the way the gateway does: every parameter but sign,
// sorted by name, as name=value joined with &, SHA-256, PKCS#1 v1.5.
func verify(pub *rsa.PublicKey, f url.Values) bool {
	sig, err := base64.StdEncoding.DecodeString(f.Get("sign"))
	if err != nil {
		return false
	}
	pairs := make([]string, 0, len(f))
	for k, vs := range f {
		if k == "sign" {
			continue
		}
		for _, v := range vs {
			if v != "" {
				pairs = append(pairs, k+"="+v)
			}
		}
	}
	sort.Strings(pairs)
	sum := sha256.Sum256([]byte(strings.Join(pairs, "&")))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) == nil
}

// writeSigned answers {"<field>": body, "sign": …}, the signature over the exact bytes of body
// as they stand in the answer, which is what the SDK verifies. badSign flips one byte of it.
func (s *Server) writeSigned(w http.ResponseWriter, field string, body answer, badSign bool) {
	raw, err := json.Marshal(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	sum := sha256.Sum256(raw)
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if badSign {
		sig[len(sig)/2] ^= 0xff
	}
	name, _ := json.Marshal(field)
	out := make([]byte, 0, len(raw)+len(field)+400)
	out = append(out, '{')
	out = append(out, name...)
	out = append(out, ':')
	out = append(out, raw...)
	out = append(out, `,"sign":"`...)
	out = append(out, base64.StdEncoding.EncodeToString(sig)...)
	out = append(out, `"}`...)
	w.Header().Set("Content-Type", "text/html;charset=utf-8") // what the gateway sends
	_, _ = w.Write(out)
}

var errNoCode = errors.New("no such code")

// LoginCode mints a login (auth) code for userID in appID's mini-program, as my.getAuthCode
// would give the mini-program: single use, living WithCodeLife.
func (s *Server) LoginCode(appID, userID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	code := fmt.Sprintf("%x%08x", s.now().UnixNano(), s.seq)
	s.codes[code] = loginCode{app: appID, user: userID, expires: s.now().Add(s.codeLife)}
	return code
}

// OpenID is the open_id the fake gives userID in appID: stable per app and user, different
// across apps, as Alipay's open_id is.
func OpenID(appID, userID string) string {
	sum := sha256.Sum256([]byte(appID + "\x00" + userID))
	return "0" + base64.RawURLEncoding.EncodeToString(sum[:])
}

func (s *Server) takeCode(appID, code string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.codes[code]
	if !ok || c.app != appID {
		return "", errNoCode
	}
	delete(s.codes, code)
	if s.now().After(c.expires) {
		return "", errNoCode
	}
	return c.user, nil
}

func (s *Server) oauthToken(appID string, f url.Values) answer {
	if f.Get("grant_type") != "authorization_code" && f.Get("grant_type") != "refresh_token" {
		return invalid("isv.grant-type-invalid", "grant_type参数不正确")
	}
	if f.Get("grant_type") == "refresh_token" {
		return invalid("isv.refresh-token-invalid", "刷新令牌refresh_token无效")
	}
	user, err := s.takeCode(appID, f.Get("code"))
	if err != nil {
		return invalid("isv.code-invalid", "授权码code无效")
	}
	s.mu.Lock()
	s.seq++
	n := s.seq
	s.mu.Unlock()
	return success(map[string]any{
		"user_id":       user,
		"open_id":       OpenID(appID, user),
		"access_token":  fmt.Sprintf("authusrB%016x", n),
		"expires_in":    1296000,
		"refresh_token": fmt.Sprintf("authusrR%016x", n),
		"re_expires_in": 2592000,
		"auth_start":    s.now().In(Beijing).Format("2006-01-02 15:04:05"),
	})
}
