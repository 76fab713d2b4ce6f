// Package busmsg is the format of the cache invalidation messages that
// Issuers send each other over an apitoken.Bus: a version, a kind, the
// account id (at most 255 bytes, so its length fits a byte) and, for one
// token, its id. They hold ids, never a secret nor a hash. The root package
// and the buses that write messages themselves (sqlstore's, from its
// revocation log) share it.
package busmsg

// The message's version, and its kinds.
const (
	Version = 1
	Token   = 't' // one token of the account
	Account = 'a' // every token of the account
)

// Encode returns the message that invalidates the account's token with that
// id, or every token of the account when id is empty. accountID is not empty
// and at most 255 bytes.
func Encode(accountID, id string) []byte {
	kind := byte(Token)
	if id == "" {
		kind = Account
	}
	msg := make([]byte, 0, 3+len(accountID)+len(id))
	msg = append(msg, Version, kind, byte(len(accountID)))
	msg = append(msg, accountID...)
	return append(msg, id...)
}

// Decode reads a message; ok is false for one it cannot read.
func Decode(msg []byte) (accountID, id string, ok bool) {
	if len(msg) < 3 || msg[0] != Version {
		return "", "", false
	}
	n := int(msg[2])
	if len(msg) < 3+n || n == 0 {
		return "", "", false
	}
	accountID, id = string(msg[3:3+n]), string(msg[3+n:])
	switch msg[1] {
	case Token:
		return accountID, id, id != ""
	case Account:
		return accountID, "", id == ""
	}
	return "", "", false
}
