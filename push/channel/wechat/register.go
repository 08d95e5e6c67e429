package wechat

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/tongban/tongban/push/channel"
)

// maxCode bounds a login code before it is sent anywhere: wx.login's codes are 32 characters.
const maxCode = 128

// Exchange turns a wx.login code from app's mini-program into the person's openid with
// code2Session. The openid comes only from WeChat's answer; one a client claims is never used.
// A code WeChat refuses (invalid, expired, already used) is a *channel.InputError.
func (s *Sender) Exchange(ctx context.Context, app, code string) (string, error) {
	a := s.apps[app]
	if a == nil {
		return "", &channel.InputError{Field: "app", Message: "this app has no WeChat mini-program"}
	}
	if code == "" || len(code) > maxCode {
		return "", &channel.InputError{Field: "code", Message: "not a WeChat login code"}
	}
	for _, r := range code {
		if r <= ' ' || r >= 0x7f {
			return "", &channel.InputError{Field: "code", Message: "not a WeChat login code"}
		}
	}
	res, err := a.mp.GetAuth().Code2SessionContext(withRoute(ctx, s.route), code)
	ans := readCode2SessionError(err)
	switch {
	case ans.reason != "":
		s.log.LogAttrs(ctx, slog.LevelWarn, "wechat: code2Session did not get an answer",
			slog.String("app", app), slog.String("reason", ans.reason), slog.String("detail", ans.detail))
		return "", fmt.Errorf("wechat: code2session for %s: %s", app, ans.reason)
	case ans.code == codeBadCode || ans.code == codeCodeUsed:
		return "", &channel.InputError{Field: "code", Message: "WeChat refused the login code (invalid, expired or used)"}
	case ans.code != 0:
		return "", fmt.Errorf("wechat: code2session for %s: errcode %d", app, ans.code)
	case res.OpenID == "":
		return "", fmt.Errorf("wechat: code2session for %s: bad_answer: no openid", app)
	}
	return res.OpenID, nil
}
