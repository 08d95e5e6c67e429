// Package seal encrypts small secrets for storage with AES-256-GCM under the key-encryption
// key (KEK) from config, so that a copy of Redis holds nothing usable without it.
//
// A sealed value is base64 (standard alphabet, no padding) of a random 96-bit nonce followed
// by the GCM ciphertext and tag. The purpose is the additional authenticated data: a value
// sealed for one purpose ("fcm-token") does not open for another, so one kind of secret
// cannot be passed off as another even though all share the KEK. Its users and their
// purposes: identity's ID numbers ("tongban/identity/id_number/v1", identity/secrets.go), the
// bridge's signing keys ("tongban/bridge/signing-key/v1" followed by the kid, bridge/keys_store.go),
// identity's masked ID numbers ("masked-id-number"), push/devices' device tokens ("fcm-token",
// "apns-token", "hms-token") and push/miniprogram's platform user ids ("wechat-user",
// "alipay-user").
//
// It owns no Redis keys.
package seal
