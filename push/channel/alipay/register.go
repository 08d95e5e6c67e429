package alipay

import (
	"context"
	"errors"
	"fmt"
	"strings"

	sdk "github.com/smartwalle/alipay/v3"

	"github.com/tongban/tongban/push/channel"
)

// Exchange trades a mini-program login code (my.getAuthCode) for the person's id with
// alipay.system.oauth.token: the user_id, or the open_id for a mini-program on the open_id
// model. A code Alipay refuses (used, expired, another app's) is an *channel.InputError.
func (s *Sender) Exchange(ctx context.Context, app, code string) (string, error) {
	p := s.apps[app]
	if p == nil {
		return "", &channel.InputError{Field: "app", Message: "no Alipay mini-program for this app"}
	}
	if code == "" || len(code) > 128 {
		return "", &channel.InputError{Field: "code", Message: "missing or malformed login code"}
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	rsp, err := p.client.SystemOauthToken(ctx, sdk.SystemOauthToken{GrantType: "authorization_code", Code: code})
	if err != nil {
		if e, ok := errors.AsType[*sdk.Error](err); ok {
			return "", s.refusal(string(e.Code), e.SubCode)
		}
		res := s.failure(err)
		return "", fmt.Errorf("alipay: exchange: %s: %w", res.Reason, err)
	}
	if rsp.Code != "" && !rsp.Code.IsSuccess() {
		return "", s.refusal(string(rsp.Code), rsp.SubCode)
	}
	id := rsp.UserId
	if p.mp.OpenID {
		id = rsp.OpenId
	}
	if id == "" {
		return "", errors.New("alipay: exchange: answer without the user's id (user_id vs open_id model: see OpenID)")
	}
	return id, nil
}

// refusal turns a refused token request into an error: the code's fault is the caller's, the
// rest is Alipay's or ours.
func (s *Sender) refusal(code, sub string) error {
	if strings.HasPrefix(sub, "isv.code-") || sub == "isv.invalid-code" {
		return &channel.InputError{Field: "code", Message: "Alipay refused the login code (" + sub + ")"}
	}
	return fmt.Errorf("alipay: exchange: refused: %s %s", code, sub)
}
