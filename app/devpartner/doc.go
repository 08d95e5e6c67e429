// Package devpartner is dev mode's simulated member apps: the pages a partner app's backend
// would serve when a citizen arrives. Its callback receives a provincial provider's sign-in
// answer (and shows the completeSignIn call a real backend would make) or the bridge's answer
// to a switch, which it completes as a partner would: redeem the code with the client's
// credentials and PKCE verifier (golang.org/x/oauth2), verify the ID token against the bridge's
// JWKS (go-oidc), read userinfo, and show who arrived, the ID number masked. Its login page is
// the apps' initiate_login_uri (OIDC Core §4), where a switch lands.
//
// It is a fake of the outside world, like internal/devidp, but not a leaf utility: it talks to
// the bridge over HTTP as a partner does. Its back-channel logout endpoint validates the
// bridge's logout tokens as a partner must (go-oidc, then typ, events, sid or sub, no nonce) and
// its arrival page says "signed out by Tongban" once its grant's token arrived. Pending logins
// live in memory for five minutes, accepted logout tokens (the last 200) and the discovered
// bridge for the process's life; it owns no Redis keys.
package devpartner
