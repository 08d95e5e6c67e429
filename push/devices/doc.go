// Package devices keeps a person's devices: the push tokens their apps registered, sealed, for
// the delivery workers to push to. A token is of one vendor: FCM, APNs (iPhones reached
// directly) or HMS (HarmonyOS Push Kit, for Huawei and Honor phones without Google services);
// each vendor's tokens are checked for its own shape and sealed under its own purpose.
//
// A token belongs to one person and one app at a time. Registering a token claims it in a
// global index (one key per token); a token that belonged to someone else leaves that
// person's devices, one registered again by its owner for another app changes the device's
// app. The device id is derived from the token, so registering the same token again is the
// same device. A person keeps at most MaxPerPerson devices; a new one beyond that evicts the
// one registered longest ago.
//
// The index and a person's devices live in different hash slots (the index is per token, the
// devices per person), so a registration is a few single-key scripts, not one transaction.
// They stay consistent under races and failures through a claim sequence: each claim of a
// token gets a number larger than every earlier claim of it, the device record carries the
// number of the claim that wrote it, and a record is only ever removed or overwritten by a
// step that knows of a later claim. Whatever order racing registrations run in, the token
// ends on the person of the last claim, and on nobody else (register.go has the argument).
//
// Redis keys (under the store prefix):
//
//	{p:<pid>}:devices        hash   device id -> JSON {app, platform, vendor ("" for FCM, APNS,
//	                                HMS), token (sealed with internal/seal, purpose
//	                                "fcm-token", "apns-token" or "hms-token"), registered
//	                                (unix s), seq (claim number), h (the token's hash, as in
//	                                fcmtok)}
//	fcmtok:<b64url sha256(token)>   (sha256 of "APNS:<token>" or "HMS:<token>" for those
//	                                vendors: the index of every vendor's tokens)
//	                         string "<pid> <seq>[ <pid>…]": the owner of the token and the
//	                                number of its claim, followed by earlier owners the claim
//	                                has still to remove the device from (normally none)
//
// Device ids are "d_" and the first 22 characters of the base64url SHA-256 of the token (132
// bits): stable, and no use for pushing. Tokens are never returned by List and never appear
// in errors.
package devices
