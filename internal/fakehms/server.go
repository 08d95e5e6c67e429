package fakehms

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tongban/tongban/internal/fakevendor"
)

// Keep is how many accepted messages, and how many attempts, the server remembers.
const Keep = 1000

// maxBody bounds what one request may make the server read; anything near it is far past
// MaxPayload anyway.
const maxBody = 1 << 20

// Server is one Push Kit project's v3 send endpoint. It is safe for concurrent use.
type Server struct {
	project        string
	audience       string
	now            func() time.Time
	allowMarketing bool
	categories     map[string]bool // the self-classification rights granted
	quota          int             // requests per quotaWindow per project; 0: none
	quotaWindow    time.Duration

	mu           sync.Mutex
	seq          uint64
	accounts     map[string]account // by kid
	received     fakevendor.Ring[Received]
	attempts     fakevendor.Ring[Attempt]
	replies      fakevendor.Replies[Reply] // Fail and Script
	unregistered map[string]bool
	jwts         map[string]bool // distinct JWTs that passed authentication
	windowStart  time.Time
	windowCount  int
}

// Option configures a Server.
type Option func(*Server)

// WithClock sets the clock that judges JWT iat/exp, the quota window and stamps records.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithAudience sets the aud a JWT must name; DefaultAudience otherwise.
func WithAudience(aud string) Option { return func(s *Server) { s.audience = aud } }

// WithMarketing lets messages of category MARKETING (资讯营销) through. Without it the fake
// refuses them: Tongban never sends marketing, and a test that does should fail loudly.
func WithMarketing() Option { return func(s *Server) { s.allowMarketing = true } }

// WithCategories sets the notification categories the project holds self-classification rights
// (通知消息自分类权益) for; by default all the service-and-communication ones.
func WithCategories(categories ...string) Option {
	return func(s *Server) {
		s.categories = make(map[string]bool, len(categories))
		for _, c := range categories {
			s.categories[c] = true
		}
	}
}

// WithQuota makes the project accept at most n requests per window (a fixed window from the
// first request in it); the rest answer HTTP 503 flow control with Retry-After the window's
// remainder.
func WithQuota(n int, window time.Duration) Option {
	return func(s *Server) { s.quota, s.quotaWindow = n, window }
}

// ServiceCategories are the service-and-communication (服务与通讯) categories of HarmonyOS
// notification messages, which need self-classification rights; MARKETING is the other class.
var ServiceCategories = []string{
	"IM", "VOIP", "SUBSCRIPTION", "TRAVEL", "HEALTH", "WORK", "ACCOUNT", "EXPRESS", "FINANCE",
	"DEVICE_REMINDER", "MAIL", "CUSTOMER_SERVICE",
}

// NewServer returns a fake Push Kit for project (the projectId in /v3/{projectId}/messages:send).
// Register service accounts with NewServiceAccount or RegisterKey.
func NewServer(project string, opts ...Option) *Server {
	s := &Server{project: project, audience: DefaultAudience, now: time.Now, accounts: make(map[string]account)}
	WithCategories(ServiceCategories...)(s)
	for _, o := range opts {
		o(s)
	}
	s.resetLocked()
	return s
}

// Project is the server's project id.
func (s *Server) Project() string { return s.project }

// Received is one message the server accepted, for one token.
type Received struct {
	RequestID  string          `json:"requestId"`
	Project    string          `json:"project"`
	ReceivedAt time.Time       `json:"receivedAt"`
	PushType   string          `json:"pushType"`
	Token      string          `json:"token"`
	Test       bool            `json:"testMessage,omitempty"`
	TTL        int             `json:"ttl"`
	Message    Notification    `json:"notification"`
	Raw        json.RawMessage `json:"-"` // the request body as sent
}

// Attempt is one request to the send endpoint, accepted or refused.
type Attempt struct {
	At      time.Time
	Project string // from the path; "" when the path was not a send path
	Token   string // the first target token, as far as the body could be read
	JWT     string // the bearer token, when it verified
	Status  int    // HTTP status answered
	Code    string // Push Kit's code answered, or "cancelled"
}

// Handler serves POST …/v3/{projectId}/messages:send. Any prefix is accepted, so it works
// mounted anywhere; the client's endpoint is the handler's base URL.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveSend) }

func (s *Server) serveSend(w http.ResponseWriter, r *http.Request) {
	a := Attempt{At: s.now()}
	rid := s.requestID()
	rec, ref := s.send(w, r, &a, rid)
	if ref != nil {
		a.Status, a.Code = ref.status, ref.code
		if ref.status == 499 {
			a.Code = "cancelled"
		}
		if ref.raw {
			writeRaw(w, ref.status, ref.msg)
		} else {
			writeAnswer(w, ref.status, Answer{Code: ref.code, Msg: ref.msg, RequestID: rid}, ref.retryAfter)
		}
	} else {
		a.Status, a.Code = http.StatusOK, CodeSuccess
		for _, m := range rec {
			s.record(m)
		}
		writeAnswer(w, http.StatusOK, Answer{Code: CodeSuccess, Msg: "Success", RequestID: rid}, 0)
	}
	s.mu.Lock()
	s.attempts.Add(a)
	s.mu.Unlock()
}

// send runs the checks in the order doc.go lists and returns what to record or the refusal.
func (s *Server) send(w http.ResponseWriter, r *http.Request, a *Attempt, rid string) ([]Received, *refusal) {
	project, ok := sendPath(r.URL.Path)
	if !ok || r.Method != http.MethodPost {
		return nil, &refusal{status: http.StatusNotFound, code: "404", msg: "Not Found"}
	}
	a.Project = project
	jwt, ref := s.authenticate(r)
	if ref != nil {
		return nil, ref
	}
	if project != s.project {
		// The service account belongs to one project; Huawei answers a token used for another
		// app's project with the authentication error.
		return nil, authFailed("the service account is not of project " + project)
	}
	a.JWT = jwt
	s.mu.Lock()
	s.jwts[jwt] = true
	s.mu.Unlock()
	// The body is read before anything waits, so that the server notices a caller who gives
	// up (net/http watches the connection only once the body is consumed).
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return nil, &refusal{status: http.StatusBadRequest, code: CodeTooLarge, msg: "The message body size exceeds the default value"}
	}
	if ref := s.flowControl(); ref != nil {
		return nil, ref
	}
	if ref := s.play(r, s.popNext()); ref != nil {
		return nil, ref
	}
	pushType := strings.TrimSpace(r.Header.Get("push-type"))
	req, ref := s.judge(pushType, body)
	if len(req.Target.Token) > 0 {
		a.Token = req.Target.Token[0]
	}
	if ref != nil {
		return nil, ref
	}
	if len(req.Target.Token) == 1 {
		if ref := s.play(r, s.popScript(req.Target.Token[0])); ref != nil {
			if ref.code == CodeInvalidTokens {
				ref.msg = illegalTokens(req.Target.Token, orDefault(ref.msg, "noRight"), 0)
			}
			return nil, ref
		}
	}
	good, bad := s.sortTokens(req.Target.Token)
	if len(good) == 0 {
		return nil, &refusal{status: http.StatusBadRequest, code: CodeInvalidTokens, msg: bad.msg(0)}
	}
	at := s.now()
	out := make([]Received, 0, len(good))
	for _, t := range good {
		out = append(out, Received{
			RequestID: rid, Project: project, ReceivedAt: at, PushType: pushType, Token: t,
			Test: req.PushOptions.TestMessage, TTL: req.ttl(), Message: *req.Payload.Notification, Raw: body,
		})
	}
	if len(bad) > 0 {
		// Some tokens went, some did not: Push Kit answers 80100000 and sends to the rest.
		for _, m := range out {
			s.record(m)
		}
		return nil, &refusal{status: http.StatusOK, code: CodePartialSuccess, msg: bad.msg(len(good))}
	}
	return out, nil
}

// sendPath finds {projectId} in …/v3/{projectId}/messages:send.
func sendPath(path string) (string, bool) {
	i := strings.LastIndex(path, "/v3/")
	if i < 0 {
		return "", false
	}
	project, ok := strings.CutSuffix(path[i+len("/v3/"):], "/messages:send")
	return project, ok && project != "" && !strings.Contains(project, "/")
}

// flowControl counts the request against the project's quota.
func (s *Server) flowControl() *refusal {
	if s.quota <= 0 {
		return nil
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.windowStart.IsZero() || !now.Before(s.windowStart.Add(s.quotaWindow)) {
		s.windowStart, s.windowCount = now, 0
	}
	s.windowCount++
	if s.windowCount <= s.quota {
		return nil
	}
	r := FlowControl(s.windowStart.Add(s.quotaWindow).Sub(now)).refusal()
	return r
}

// play carries out a scripted reply: its delay, then its refusal if it has one.
func (s *Server) play(r *http.Request, reply Reply) *refusal {
	if err := wait(r.Context(), reply.delay); err != nil {
		return &refusal{status: 499, code: "cancelled", msg: "the caller went away"}
	}
	return reply.refusal()
}

// badTokens are the tokens refused, by Push Kit's reason.
type badTokens map[string][]string

func (b badTokens) msg(success int) string {
	m := map[string]any{"illegalTokens": map[string][]string(b), "failure": b.count()}
	if success > 0 {
		m["success"] = success
	}
	out, _ := json.Marshal(m)
	return string(out)
}

func (b badTokens) count() int {
	n := 0
	for _, ts := range b {
		n += len(ts)
	}
	return n
}

func illegalTokens(tokens []string, reason string, success int) string {
	return badTokens{reason: tokens}.msg(success)
}

// sortTokens parts the tokens into those the fake delivers to and those it refuses: a token
// whose shape is wrong (tokenFormatError) or that Unregister marked (noRight: Push Kit knows no
// device of this project by it).
func (s *Server) sortTokens(tokens []string) ([]string, badTokens) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var good []string
	bad := badTokens{}
	for _, t := range tokens {
		switch {
		case !tokenShape(t):
			bad["tokenFormatError"] = append(bad["tokenFormatError"], t)
		case s.unregistered[t]:
			bad["noRight"] = append(bad["noRight"], t)
		default:
			good = append(good, t)
		}
	}
	return good, bad
}

func (s *Server) requestID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return fmt.Sprintf("%d%06d", s.now().UnixMilli(), s.seq%1000000)
}

func (s *Server) record(m Received) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.received.Add(m)
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}
