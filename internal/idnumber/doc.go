// Package idnumber reads the 18-character citizen identity number of GB 11643-1999 (公民身份号码):
// six digits of the administrative division where the person was first registered (户籍), eight
// of the birth date, three of a sequence whose last digit is odd for men and even for women, and
// an ISO 7064 MOD 11-2 check character (0–9 or X).
//
// identity (sign-in claims), push (events by ID number) and the dev fixtures all read numbers,
// so the one parser lives here. It holds no state and owns no Redis keys.
//
// A Number must never be logged or stored as it is: callers keep only the link key (an HMAC),
// a sealed copy, and Masked.
package idnumber
