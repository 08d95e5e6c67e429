// Package fakeapns is an in-process Apple Push Notification service: the HTTP/2 provider API
// (POST /3/device/{token}) as Apple documents it, so that the real apns2 client
// (github.com/sideshow/apns2) talks to it unchanged, with token-based authentication. Tests
// and dev mode Start it on loopback over TLS and HTTP/2; dev mode serves MessagesHandler at
// /dev/apns/messages to show what was "pushed".
//
// Wiring:
//
//	p8, key, _ := fakeapns.GenerateKey()
//	s := fakeapns.NewServer()
//	s.AddKey("TEAM000001", "KEY0000001", &key.PublicKey)
//	s.AddTopics("cn.gov.example.app")
//	run := s.Start()            // run.URL, run.RootCAs
//	defer run.Close()
//	// apns2: client.Host = run.URL, and an HTTP/2 transport whose tls.Config has
//	// RootCAs: run.RootCAs; the Tongban sender takes Endpoint and RootCAs in its Options.
//
// What a request goes through, in order; every refusal is APNs' JSON {"reason": "…"} (410s add
// "timestamp", milliseconds since the epoch), and every answer carries an apns-id header (the
// request's, else a new upper-case UUID):
//
//	path            …/3/device/{token}                    else 404 BadPath
//	method          POST                                  else 405 MethodNotAllowed
//	headers         none of authorization, apns-* twice   else 400 DuplicateHeaders
//	provider token  authorization: bearer <JWT>           else 403 MissingProviderToken
//	                ES256, kid registered (AddKey), iss =  else 403 InvalidProviderToken
//	                the key's team, signature verifies
//	                iat within TokenLifetime (1 h) of      else 403 ExpiredProviderToken
//	                the clock (WithClock)
//	                a new token no sooner than the limit   else 429 TooManyProviderTokenUpdates
//	                after the key's last (opt-in:
//	                WithTokenUpdateLimit)
//	apns-id         absent or a canonical UUID            else 400 BadMessageId
//	apns-push-type  absent (alert) or one Apple lists     else 400 InvalidPushType
//	apns-priority   absent (10), 10, 5 or 1; not 10 with  else 400 BadPriority
//	                push type background
//	apns-expiration absent or Unix seconds ≥ 0            else 400 BadExpirationDate
//	apns-collapse-id at most 64 bytes                     else 400 BadCollapseId
//	apns-topic      present                               else 400 MissingTopic
//	                known (AddTopics)                     else 400 BadTopic
//	Fail            next scripted outage reply, if any
//	payload         not empty                             else 400 PayloadEmpty
//	                ≤ 4096 bytes (5120 for voip)          else 413 PayloadTooLarge
//	device token    present                               else 400 MissingDeviceToken
//	                hex, even length, 64–200 characters   else 400 BadDeviceToken
//	                issued for this topic (RegisterToken) else 400 DeviceTokenNotForTopic
//	Script          next reply scripted for this token, if any
//	Unregister      token unregistered                    → 410 Unregistered + timestamp
//	accept          200, empty body; recorded
//
// A verified provider token is remembered, so later requests bearing it cost only the age
// check, and ProviderTokens counts the distinct tokens adopted: a provider that reuses its
// token as Apple asks shows one per refresh.
//
// Scripting: Fail(n, reply) queues a reply for the next n requests whatever their device;
// Script(token, replies...) queues replies for one device token; Unregister makes tokens answer
// 410 for good. Replies are TooManyRequests() 429, InternalServerError() 500,
// ServiceUnavailable() and Shutdown() 503, ExpiredProviderToken() 403, Unregistered(at) 410,
// Refuse(status, reason) for any other reason, Raw(status, contentType, body) for what a proxy
// might say instead, and Slow(d), which waits (giving up when the caller does) and then answers
// as usual.
//
// Watching: Messages lists what was accepted (newest first), Requests every attempt with its
// status and reason (oldest first), so tests can count retries; Reset forgets them, the
// scripts and the provider tokens seen. Both keep the last Keep (1000).
//
// What apns2 v0.25.0 does with the answers: PushWithContext returns a *Response with the
// status, the reason and apns-id for any HTTP answer whose body is empty or JSON; a body that
// is not JSON comes back as an error with an empty Response. It never retries. Its token.Token
// signs a new JWT only when the one it holds is TokenTimeout (50 minutes) old by the local
// clock, which WithClock does not move.
//
// All state is in memory behind one mutex; it is a fake of the outside world, so it owns no
// Redis keys.
package fakeapns
