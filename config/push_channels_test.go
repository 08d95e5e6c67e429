package config

import (
	"strings"
	"testing"
)

// withChannels is validConfig with every channel beside FCM configured as an operator would.
func withChannels() *Config {
	c := validConfig()
	tpl := []MiniProgramTemplate{{Category: "出行", TemplateID: "tpl-1", Page: "pages/notice/index?id={id}",
		Fields: map[string]string{"thing1": "title", "thing2": "service", "date3": "date", "thing4": "text:请查看"}}}
	c.Push.APNs = APNs{Key: "-----BEGIN PRIVATE KEY-----", KeyID: "ABC123DEFG", TeamID: "TEAM123456",
		Topics: map[string]string{"suishenban": "cn.gov.sh.ssb"}}
	c.Push.HMS = HMS{Credentials: `{"project_id": "p"}`, Category: "ACCOUNT"}
	c.Push.WeChat = WeChat{MiniPrograms: []WeChatMiniProgram{{App: "zheliban", AppID: "wx1234567890abcdef", Secret: "s", Templates: tpl}}}
	c.Push.Alipay = Alipay{MiniPrograms: []AlipayMiniProgram{{App: "suishenban", AppID: "2021000000000001",
		PrivateKey: "k", AlipayPublicKey: "pk", Templates: tpl}}}
	return c
}

func TestPushChannelsValid(t *testing.T) {
	if err := withChannels().Validate(); err != nil {
		t.Fatalf("a configuration with every channel: %v", err)
	}
	c := validConfig()
	c.Push.APNs.Topics = map[string]string{"zheliban": "cn.gov.zj.zlb"} // topics alone leave APNs off
	c.Push.HMS.Category = "ACCOUNT"
	if err := c.Validate(); err != nil {
		t.Fatalf("channels without credentials are off, not wrong: %v", err)
	}
}

// Each row breaks one thing about the channels and names the key and the words of its problem.
func TestPushChannelsRejects(t *testing.T) {
	for _, tc := range []struct {
		name, key, words string
		mutate           func(*Config)
	}{
		{"an APNs key id without the key", "push.apns.key", "required when push.apns is configured", func(c *Config) {
			c.Push.APNs = APNs{KeyID: "ABC123DEFG", TeamID: "TEAM123456", Topics: map[string]string{"zheliban": "x"}}
		}},
		{"an APNs key id of the wrong length", "push.apns.key_id", "10-character key id", func(c *Config) { c.Push.APNs.KeyID = "ABC" }},
		{"an APNs team id missing", "push.apns.team_id", "10-character team id", func(c *Config) { c.Push.APNs.TeamID = "" }},
		{"APNs without topics", "push.apns.topics", "bundle id", func(c *Config) { c.Push.APNs.Topics = nil }},
		{"an APNs topic of an app that is not a member", "push.apns.topics.nowhere", "not a member app", func(c *Config) {
			c.Push.APNs.Topics["nowhere"] = "x.y"
		}},
		{"an APNs endpoint over http", "push.apns.endpoint", "https", func(c *Config) { c.Push.APNs.Endpoint = "http://apns.example" }},
		{"an APNs endpoint over http on loopback", "push.apns.endpoint", "HTTP/2 over TLS", func(c *Config) { c.Push.APNs.Endpoint = "http://127.0.0.1:8443" }},
		{"an APNs endpoint with a path", "push.apns.endpoint", "without a path", func(c *Config) { c.Push.APNs.Endpoint = "https://apns.example/3/device" }},
		{"an APNs key id in lower case", "push.apns.key_id", "capital letters", func(c *Config) { c.Push.APNs.KeyID = "abc123defg" }},
		{"Push Kit's marketing category with spaces", "push.hms.category", "never marketing", func(c *Config) { c.Push.HMS.Category = " marketing " }},
		{"a WeChat key of no type", "push.wechat.mini_programs[0].templates[0].fields.keyword1", "not a WeChat template key", func(c *Config) {
			c.Push.WeChat.MiniPrograms[0].Templates[0].Fields = map[string]string{"keyword1": "title"}
		}},
		{"an Alipay template without a page", "push.alipay.mini_programs[0].templates[0].page", "required", func(c *Config) {
			c.Push.Alipay.MiniPrograms[0].Templates[0].Page = ""
		}},
		{"an Alipay template id past 64", "push.alipay.mini_programs[0].templates[0].template_id", "64", func(c *Config) {
			c.Push.Alipay.MiniPrograms[0].Templates[0].TemplateID = strings.Repeat("t", 65)
		}},
		{"Push Kit's marketing category", "push.hms.category", "never marketing", func(c *Config) { c.Push.HMS.Category = "MARKETING" }},
		{"a Push Kit project without credentials", "push.hms.credentials", "service account", func(c *Config) {
			c.Push.HMS = HMS{ProjectID: "p"}
		}},
		{"a WeChat mini-program of no member app", "push.wechat.mini_programs[0].app", "not a member app", func(c *Config) {
			c.Push.WeChat.MiniPrograms[0].App = "nowhere"
		}},
		{"two WeChat mini-programs of one app", "push.wechat.mini_programs[1].app", "two WeChat mini-programs", func(c *Config) {
			c.Push.WeChat.MiniPrograms = append(c.Push.WeChat.MiniPrograms, c.Push.WeChat.MiniPrograms[0])
		}},
		{"a WeChat AppID that is not one", "push.wechat.mini_programs[0].app_id", "AppID (wx…)", func(c *Config) {
			c.Push.WeChat.MiniPrograms[0].AppID = "12345"
		}},
		{"a WeChat mini-program without its secret", "push.wechat.mini_programs[0].secret", "AppSecret", func(c *Config) {
			c.Push.WeChat.MiniPrograms[0].Secret = ""
		}},
		{"a WeChat state that is none", "push.wechat.mini_programs[0].state", "formal", func(c *Config) {
			c.Push.WeChat.MiniPrograms[0].State = "beta"
		}},
		{"a mini-program without templates", "push.wechat.mini_programs[0].templates", "at least one", func(c *Config) {
			c.Push.WeChat.MiniPrograms[0].Templates = nil
		}},
		{"two templates of one category", "push.alipay.mini_programs[0].templates[1].category", "two templates", func(c *Config) {
			m := &c.Push.Alipay.MiniPrograms[0]
			m.Templates = append(m.Templates, m.Templates[0])
		}},
		{"a template field of an unknown source", "push.alipay.mini_programs[0].templates[0].fields.thing1", "not a source", func(c *Config) {
			c.Push.Alipay.MiniPrograms[0].Templates[0].Fields = map[string]string{"thing1": "id_number"}
		}},
		{"a template without fields", "push.alipay.mini_programs[0].templates[0].fields", "required", func(c *Config) {
			c.Push.Alipay.MiniPrograms[0].Templates[0].Fields = nil
		}},
		{"an Alipay APPID with letters", "push.alipay.mini_programs[0].app_id", "16-digit APPID", func(c *Config) {
			c.Push.Alipay.MiniPrograms[0].AppID = "wx1234567890"
		}},
		{"an Alipay mini-program without Alipay's public key", "push.alipay.mini_programs[0].alipay_public_key", "verify its answers", func(c *Config) {
			c.Push.Alipay.MiniPrograms[0].AlipayPublicKey = ""
		}},
		{"a WeChat secret published in the example", "push.wechat.mini_programs[0].secret", "published in tongban.example.yaml", func(c *Config) {
			c.Push.WeChat.MiniPrograms[0].Secret = "example-zheliban-wechat-secret"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := withChannels()
			tc.mutate(c)
			ps := problems(t, c.Validate())
			for _, p := range ps {
				if p.Key == tc.key && strings.Contains(p.Message, tc.words) {
					return
				}
			}
			t.Errorf("no problem %s containing %q in:\n%v", tc.key, tc.words, ps)
		})
	}
}
