// Package demo is dev mode's /demo: three phones side by side (浙里办, 随申办, 苏服办), each a
// small web app at /demo/phone/{app} that talks to Tongban exactly as a member app would, a
// data platform panel that sends citizen events, and a live strip of the person's activity.
//
// Each phone signs in through its app's simulated provider with the authorization code flow
// and PKCE (beginSignIn with redirectUri /demo/phone/{app}, the provider answers at once to a
// login_hint, completeSignIn with the verifier), keeps its session in sessionStorage keyed by
// app, reads me, the services of the other apps, the inbox and the sessions over /graphql, and
// subscribes to notificationReceived over the websocket (graphql-transport-ws). A tap on a
// service of another app is switchApp, the consent sheet when consentRequired is not empty,
// grantConsent, switchApp again; the page then asks its parent to open the launchUrl in the
// target app's phone, where the simulated partner backend (app/devpartner) runs the bridge's
// standard OpenID Connect flow and shows who arrived. Signing out everywhere ends the session:
// a phone's websocket closes with 4403 and it shows it is signed out; an arrival page learns
// it from its app's logout token.
//
// The pages are plain HTML, CSS and JavaScript modules, embedded and served through
// internal/webui (gzip, the shared gql.js, i18n.js and base.css at /ui/); nothing is fetched
// from the network at run time. Chinese first, English on request. The only dynamic answer is
// citizens.json: the sample citizens (internal/devidp) with their accounts, for the pickers.
//
// Dev mode only (app registers it in its dev block). It owns no Redis keys.
package demo
