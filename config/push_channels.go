package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// The channels beside FCM (push.apns, push.hms, push.wechat, push.alipay). A channel without
// its credentials is off: its endpoints are not sent to, and the log says so once at start.
// Secrets and keys are given inline (or through the environment, as every key) or as a file
// in the sibling *_file key.

// APNs is Apple's push service, for apps that reach iPhones directly rather than through FCM,
// with token-based authentication (a .p8 key).
type APNs struct {
	// Key is the .p8 signing key's PEM; KeyFile the file holding it.
	Key     string `yaml:"key"`
	KeyFile string `yaml:"key_file"`
	KeyID   string `yaml:"key_id"`
	TeamID  string `yaml:"team_id"`
	// Endpoint is "" (Apple's production host), "development" (Apple's sandbox) or a URL.
	Endpoint string `yaml:"endpoint"`
	// Topics map member apps to their bundle id (the apns-topic).
	Topics map[string]string `yaml:"topics"`
}

// Enabled reports whether APNs is configured.
func (a APNs) Enabled() bool { return a.Key != "" }

// HMS is HarmonyOS Push Kit, for Huawei and Honor phones without Google services.
type HMS struct {
	// CredentialsFile is the AppGallery Connect service account's JSON key; Credentials the
	// same inline.
	Credentials     string `yaml:"credentials"`
	CredentialsFile string `yaml:"credentials_file"`
	// ProjectID defaults to the key's.
	ProjectID string `yaml:"project_id"`
	Endpoint  string `yaml:"endpoint"`
	// Category is the notification category 免申即享 is sent under: one of the service and
	// communication class (default ACCOUNT), never MARKETING.
	Category string `yaml:"category"`
}

// Enabled reports whether Push Kit is configured.
func (h HMS) Enabled() bool { return h.Credentials != "" }

// WeChat is the member apps' WeChat mini-programs, reached by subscription messages.
type WeChat struct {
	Endpoint     string              `yaml:"endpoint"`
	MiniPrograms []WeChatMiniProgram `yaml:"mini_programs"`
}

// WeChatMiniProgram is one member app's WeChat mini-program.
type WeChatMiniProgram struct {
	App        string `yaml:"app"`
	AppID      string `yaml:"app_id"`
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	// State is the miniprogram_state a message opens: formal (default), trial or developer.
	State     string                `yaml:"state"`
	Templates []MiniProgramTemplate `yaml:"templates"`
}

// Alipay is the member apps' Alipay mini-programs, reached by subscription messages.
type Alipay struct {
	Endpoint     string              `yaml:"endpoint"`
	MiniPrograms []AlipayMiniProgram `yaml:"mini_programs"`
}

// AlipayMiniProgram is one member app's Alipay mini-program: its app id, its RSA2 private key
// (signing requests) and Alipay's public key (verifying answers).
type AlipayMiniProgram struct {
	App                 string `yaml:"app"`
	AppID               string `yaml:"app_id"`
	PrivateKey          string `yaml:"private_key"`
	PrivateKeyFile      string `yaml:"private_key_file"`
	AlipayPublicKey     string `yaml:"alipay_public_key"`
	AlipayPublicKeyFile string `yaml:"alipay_public_key_file"`
	// OpenID: the mini-program is on Alipay's open_id model (apps created since 2023).
	OpenID    bool                  `yaml:"open_id"`
	Templates []MiniProgramTemplate `yaml:"templates"`
}

// MiniProgramTemplate is the subscription template carrying one category's notices.
type MiniProgramTemplate struct {
	Category   string `yaml:"category"`
	TemplateID string `yaml:"template_id"`
	// Page is the mini-program page a message opens; {id} in it is the notification's id.
	Page string `yaml:"page"`
	// LongTerm: the platform grants this template long-term subscriptions.
	LongTerm bool `yaml:"long_term"`
	// Fields map the template's keys (WeChat thing1, time2…; Alipay keyword1…) to what fills
	// them: title, service, body, date, time, category, or a literal "text:…".
	Fields map[string]string `yaml:"fields"`
}

// templateSources are the values a template field may take, besides "text:…".
var templateSources = []string{"title", "service", "body", "date", "time", "category"}

// pushChannelFiles are the *_file keys of the channels, for resolveSecretFiles.
func pushChannelFiles(c *Config) []secretFile {
	p := &c.Push
	fs := []secretFile{
		{"push.apns.key", &p.APNs.KeyFile, &p.APNs.Key},
		{"push.hms.credentials", &p.HMS.CredentialsFile, &p.HMS.Credentials},
	}
	for i := range p.WeChat.MiniPrograms {
		m := &p.WeChat.MiniPrograms[i]
		fs = append(fs, secretFile{fmt.Sprintf("push.wechat.mini_programs[%d].secret", i), &m.SecretFile, &m.Secret})
	}
	for i := range p.Alipay.MiniPrograms {
		m := &p.Alipay.MiniPrograms[i]
		fs = append(fs,
			secretFile{fmt.Sprintf("push.alipay.mini_programs[%d].private_key", i), &m.PrivateKeyFile, &m.PrivateKey},
			secretFile{fmt.Sprintf("push.alipay.mini_programs[%d].alipay_public_key", i), &m.AlipayPublicKeyFile, &m.AlipayPublicKey})
	}
	return fs
}

func (c *Config) validatePushChannels(ps *Problems) {
	p := c.Push
	apps := map[string]bool{}
	for _, a := range c.Apps() {
		apps[a.ID] = true
	}
	memberApp := func(id string) string {
		switch {
		case id == "":
			return "required: the member app's id"
		case !apps[id]:
			return fmt.Sprintf("%q is not a member app (providers or clients)", id)
		}
		return ""
	}
	a := p.APNs
	if a.Enabled() || a.KeyID != "" || a.TeamID != "" {
		ps.check(
			check{"push.apns.key", when(!a.Enabled(), "required when push.apns is configured: the .p8 key's PEM (or key_file)")},
			check{"push.apns.key_id", when(!appleID.MatchString(a.KeyID), "required: the 10-character key id Apple gave the .p8 key (capital letters and digits)")},
			check{"push.apns.team_id", when(!appleID.MatchString(a.TeamID), "required: the 10-character team id of the Apple developer account (capital letters and digits)")},
			check{"push.apns.topics", when(len(a.Topics) == 0, "required: each member app's bundle id, e.g. {zheliban: cn.gov.zj.zlb}")},
		)
		switch a.Endpoint {
		case "", "production", "development", "sandbox":
		default:
			u, err := url.Parse(a.Endpoint)
			ps.check(check{"push.apns.endpoint", when(err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "",
				`want "production", "development" or an https base URL without a path (APNs speaks HTTP/2 over TLS only)`)})
		}
		for _, app := range sortedKeys(a.Topics) {
			ps.check(
				check{"push.apns.topics." + app, memberApp(app)},
				check{"push.apns.topics." + app, when(strings.TrimSpace(a.Topics[app]) == "", "want the app's bundle id")},
			)
		}
	}
	h := p.HMS
	ps.check(check{"push.hms.category", when(strings.EqualFold(strings.TrimSpace(h.Category), "MARKETING"),
		"免申即享 notices are service notices, never marketing: use a service and communication category such as ACCOUNT")})
	if h.Enabled() || h.ProjectID != "" {
		ps.check(
			check{"push.hms.credentials", when(!h.Enabled(), "required when push.hms is configured: the service account's JSON key (or credentials_file)")},
			check{"push.hms.endpoint", optional(h.Endpoint, httpsURL(h.Endpoint, true))},
		)
	}
	ps.check(check{"push.wechat.endpoint", optional(p.WeChat.Endpoint, httpsURL(p.WeChat.Endpoint, true))})
	seen := map[string]int{}
	for i, m := range p.WeChat.MiniPrograms {
		prefix := fmt.Sprintf("push.wechat.mini_programs[%d]", i)
		ps.check(
			check{prefix + ".app", memberApp(m.App)},
			check{prefix + ".app", when(seen[m.App] > 0, fmt.Sprintf("%q has two WeChat mini-programs", m.App))},
			check{prefix + ".app_id", when(!strings.HasPrefix(m.AppID, "wx") || len(m.AppID) < 10, "required: the mini-program's AppID (wx…)")},
			check{prefix + ".secret", when(m.Secret == "", "required: the mini-program's AppSecret (or secret_file)")},
			check{prefix + ".state", optional(m.State, oneOf(m.State, []string{"formal", "trial", "developer"}))},
		)
		seen[m.App]++
		checkTemplates(ps, prefix, m.Templates)
		for j, t := range m.Templates {
			for _, k := range sortedKeys(t.Fields) {
				ps.check(check{fmt.Sprintf("%s.templates[%d].fields.%s", prefix, j, k), when(!weChatKey.MatchString(k),
					"not a WeChat template key: want a type and a number, like thing1, time2, phrase3 (types: "+strings.Join(weChatKeyTypes, ", ")+")")})
			}
		}
	}
	ps.check(check{"push.alipay.endpoint", optional(p.Alipay.Endpoint, httpsURL(p.Alipay.Endpoint, false))})
	seen = map[string]int{}
	for i, m := range p.Alipay.MiniPrograms {
		prefix := fmt.Sprintf("push.alipay.mini_programs[%d]", i)
		ps.check(
			check{prefix + ".app", memberApp(m.App)},
			check{prefix + ".app", when(seen[m.App] > 0, fmt.Sprintf("%q has two Alipay mini-programs", m.App))},
			check{prefix + ".app_id", when(len(m.AppID) < 8 || strings.Trim(m.AppID, "0123456789") != "", "required: the mini-program's 16-digit APPID")},
			check{prefix + ".private_key", when(m.PrivateKey == "", "required: the app's RSA2 private key (or private_key_file)")},
			check{prefix + ".alipay_public_key", when(m.AlipayPublicKey == "", "required: Alipay's public key, to verify its answers (or alipay_public_key_file)")},
		)
		seen[m.App]++
		checkTemplates(ps, prefix, m.Templates)
		for j, t := range m.Templates {
			tp := fmt.Sprintf("%s.templates[%d]", prefix, j)
			ps.check(
				check{tp + ".page", when(strings.TrimSpace(t.Page) == "", "required: Alipay sends a subscription message only with the page it opens")},
				check{tp + ".template_id", when(utf8.RuneCountInString(t.TemplateID) > 64, "longer than 64 characters, Alipay's limit")},
			)
		}
	}
}

// appleID is the shape of Apple's key and team ids.
var appleID = regexp.MustCompile(`^[A-Z0-9]{10}$`)

// weChatKeyTypes are the types of WeChat subscription template keys (the key is the type and
// a number: thing1, character_string2); push/channel/wechat renders each to its limits.
var weChatKeyTypes = []string{"thing", "number", "letter", "symbol", "character_string", "time", "date", "amount",
	"phone_number", "car_number", "name", "phrase", "enum"}

var weChatKey = regexp.MustCompile(`^(` + strings.Join(weChatKeyTypes, "|") + `)[0-9]{1,3}$`)

func checkTemplates(ps *Problems, prefix string, ts []MiniProgramTemplate) {
	ps.check(
		check{prefix + ".templates", when(len(ts) == 0, "required: at least one subscription template (category, template_id, fields)")},
		check{prefix + ".templates", when(len(ts) > 64, fmt.Sprintf("%d templates; at most 64, one a category", len(ts)))},
	)
	cats := map[string]bool{}
	for j, t := range ts {
		tp := fmt.Sprintf("%s.templates[%d]", prefix, j)
		ps.check(
			check{tp + ".category", required(strings.TrimSpace(t.Category), "")},
			check{tp + ".category", when(cats[t.Category], fmt.Sprintf("category %q has two templates", t.Category))},
			check{tp + ".template_id", required(strings.TrimSpace(t.TemplateID), "")},
			check{tp + ".template_id", when(len(t.TemplateID) > 128, "longer than 128 characters")},
			check{tp + ".page", when(utf8.RuneCountInString(t.Page) > 128, "longer than 128 characters")},
			check{tp + ".fields", when(len(t.Fields) == 0, "required: the template's keys and what fills each (title, service, body, date, time, category, text:…)")},
		)
		cats[t.Category] = true
		for _, k := range sortedKeys(t.Fields) {
			v := t.Fields[k]
			if !strings.HasPrefix(v, "text:") && !slices.Contains(templateSources, v) {
				ps.check(check{tp + ".fields." + k, fmt.Sprintf("%q is not a source; want one of %s, or text:…", v, strings.Join(templateSources, ", "))})
			}
		}
	}
}
