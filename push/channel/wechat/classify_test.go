package wechat

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/silenceper/wechat/v2/util"
)

func TestFieldOf(t *testing.T) {
	for msg, want := range map[string]string{
		"argument invalid! data.thing18.value invalid rid: 63b13eeb-65c02d34": "thing18",
		"argument invalid! data.character_string2.value is empty":             "character_string2",
		"argument invalid! miniprogram_state invalid":                         "",
		"": "",
	} {
		if got := fieldOf(msg); got != want {
			t.Errorf("fieldOf(%q) = %q, want %q", msg, got, want)
		}
	}
}

func TestQuotaResetIsMidnightInChina(t *testing.T) {
	now := time.Date(2026, 12, 3, 23, 59, 0, 0, shanghai)
	if d := untilQuotaReset(now); d != time.Minute {
		t.Fatalf("wait %v, want 1m", d)
	}
	if d := untilQuotaReset(time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC)); d != 24*time.Hour {
		t.Fatalf("at midnight in China: wait %v, want 24h", d)
	}
}

// The readers of the SDK's errors and of WeChat's token answer never panic, never keep a URL,
// and read a code only from WeChat's own shape.
func FuzzReaders(f *testing.F) {
	f.Add(`{"access_token":"x","expires_in":7200}`, int64(40029), "invalid code rid: 1")
	f.Add(`{"errcode":40013,"errmsg":"invalid appid"}`, int64(-1), "")
	f.Add(`<html>`, int64(0), "errcode=1 , errmsg=")
	f.Fuzz(func(t *testing.T, body string, code int64, msg string) {
		tok, life, err := parseTokenAnswer([]byte(body))
		if err == nil && (tok == "" || life <= 0) {
			t.Fatalf("token %q life %v without error", tok, life)
		}
		a := readCode2SessionError(fmt.Errorf("Code2Session error : errcode=%v , errmsg=%v", code, msg))
		if a.reason == "" && a.code != code && code > -1e9 && code < 1e9 {
			t.Fatalf("code %d read as %d", code, a.code)
		}
		b := readSendError(fmt.Errorf("http post error : uri=https://api.weixin.qq.com/x?access_token=SECRET%s , statusCode=502", msg))
		if strings.Contains(b.detail, "SECRET") || b.reason != "transport" {
			t.Fatalf("send error read as %+v", b)
		}
		c := readSendError(util.NewCommonError("Send", code, msg))
		if c.code != code || c.reason != "" {
			t.Fatalf("common error read as %+v", c)
		}
		_ = fieldOf(msg)
		_ = safeMsg(msg)
		_ = outcome(c, time.Unix(code, 0))
		_ = readSendError(errors.New(body))
	})
}
