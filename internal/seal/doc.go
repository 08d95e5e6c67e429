// Package seal encrypts small secrets for storage with AES-256-GCM under the key-encryption
// key (KEK) from config, so that a copy of Redis holds nothing usable without it.
//
// A sealed value is base64 (standard alphabet, no padding) of a random 96-bit nonce followed
// by the GCM ciphertext and tag. The purpose is the additional authenticated data: a value
// sealed for one purpose ("fcm-token") does not open for another, so one kind of secret
// cannot be passed off as another even though all share the KEK. This is the format
// identity's sealed ID numbers (purpose "tongban/identity/id_number/v1") and the bridge's
// sealed signing keys (purpose "tongban/bridge/signing-key/v1" + kid) already use, so both
// can move onto this package without re-sealing what is stored.
//
// It owns no Redis keys.
package seal
