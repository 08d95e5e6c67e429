// Package logout delivers OpenID Connect back-channel logout tokens to member apps. (Being written.)
package logout
